"""ExternalTaskMarker: a task that does nothing when it runs, and tells a clear with downstream
to clear a task of another DAG too (its run at `logical_date`) and that task's downstream,
following further markers there, at most `recursion_depth` DAGs deep
(services/external_markers.py does the clearing from what the version records)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from slipstream.authoring.context import Context
from slipstream.authoring.task import BaseOperator
from slipstream.errors import DagDefinitionError

DEFAULT_LOGICAL_DATE = "{{ logical_date.isoformat() }}"


class ExternalTaskMarker(BaseOperator):
    template_fields: ClassVar[Sequence[str]] = (
        "external_dag_id",
        "external_task_id",
        "logical_date",
    )
    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str,
        logical_date: str | datetime | None = DEFAULT_LOGICAL_DATE,
        execution_date: str | datetime | None = None,
        recursion_depth: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = f"ExternalTaskMarker {self.task_id!r}"
        if execution_date is not None:  # Airflow 2's name wins when given
            logical_date = execution_date
        if isinstance(logical_date, datetime):
            logical_date = logical_date.isoformat()
        if not isinstance(logical_date, str):
            raise DagDefinitionError(
                f"logical_date of {where} must be a template string or a datetime, not "
                f"{type(logical_date).__name__}"
            )
        if isinstance(recursion_depth, bool) or not isinstance(recursion_depth, int):
            raise DagDefinitionError(f"recursion_depth of {where} must be an integer")
        if recursion_depth <= 0:
            raise DagDefinitionError(f"recursion_depth of {where} should be a positive integer")
        for name, value in (
            ("external_dag_id", external_dag_id),
            ("external_task_id", external_task_id),
        ):
            if not isinstance(value, str) or not value:
                raise DagDefinitionError(f"{name} of {where} must be a non-empty string")
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.logical_date = logical_date
        self.recursion_depth = recursion_depth

    def marker_spec(self) -> dict[str, Any]:
        """What a DAG version records for clears: the fields as written (templates)."""
        return {
            "dag_id": self.external_dag_id,
            "task_id": self.external_task_id,
            "logical_date": self.logical_date,
            "recursion_depth": self.recursion_depth,
        }

    def execute(self, context: Context) -> None:
        return None
