"""The DAG, @dag and Python operators that Airflow 1.10/2.x module names give, with those
versions' defaults: catchup=True (Airflow 2's catchup_by_default) and, when a DAG names no
schedule at all, a daily one (timedelta(days=1)). Airflow 3 and Slipstream default both off.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slipstream.authoring.dag import DAG as _DAG
from slipstream.authoring.dag import dag as _dag
from slipstream.authoring.operators import (
    BranchPythonOperator as _BranchPythonOperator,
)
from slipstream.authoring.operators import (
    PythonOperator as _PythonOperator,
)
from slipstream.authoring.operators import (
    ShortCircuitOperator as _ShortCircuitOperator,
)

__all__ = ["DAG", "BranchPythonOperator", "PythonOperator", "ShortCircuitOperator", "dag"]

DEFAULT_SCHEDULE = timedelta(days=1)


def _airflow2_defaults(options: dict[str, Any]) -> dict[str, Any]:
    options.setdefault("catchup", True)
    if "schedule" not in options and "schedule_interval" not in options:
        options["schedule"] = DEFAULT_SCHEDULE
    return options


class DAG(_DAG):
    """Airflow 2's DAG: catchup defaults to True, and no schedule means daily."""

    def __init__(self, dag_id: str, description: str | None = None, **kwargs: Any) -> None:
        super().__init__(dag_id, description, **_airflow2_defaults(kwargs))


def dag(dag_id: Any = None, /, **dag_kwargs: Any) -> Any:
    """Airflow 2's @dag / @dag(...), with DAG's Airflow 2 defaults."""
    if callable(dag_id):
        return _dag(**_airflow2_defaults({}))(dag_id)
    return _dag(dag_id, **_airflow2_defaults(dag_kwargs))


class PythonOperator(_PythonOperator):
    """PythonOperator as Airflow 1.10 spelled it. `provide_context` is accepted: the context
    reaches the callable's matching parameters (or **kwargs) either way, as in Airflow 2."""

    def __init__(self, *, provide_context: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.provide_context = provide_context


class BranchPythonOperator(_BranchPythonOperator):
    """BranchPythonOperator as Airflow 1.10 spelled it (see PythonOperator)."""

    def __init__(self, *, provide_context: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.provide_context = provide_context


class ShortCircuitOperator(_ShortCircuitOperator):
    """ShortCircuitOperator as Airflow 1.10 spelled it (see PythonOperator)."""

    def __init__(self, *, provide_context: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.provide_context = provide_context
