"""ExternalTaskSensor: waits for tasks (or a task group, or the whole run) of another DAG's run
at the same logical date (shifted by execution_delta or execution_date_fn) to reach an allowed
state. It reads those states in its try, through the try's database reader (as XCom pulls do);
in reschedule mode (or deferrable) it holds no process between pokes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from slipstream.authoring.exceptions import AirflowException, AirflowSkipException
from slipstream.authoring.sensors.base import BaseSensorOperator, log
from slipstream.errors import DagDefinitionError

if TYPE_CHECKING:
    from slipstream.authoring.context import Context

_TASK_STATES = frozenset(
    {
        "none",
        "scheduled",
        "queued",
        "running",
        "success",
        "failed",
        "up_for_retry",
        "up_for_reschedule",
        "deferred",
        "upstream_failed",
        "skipped",
        "removed",
    }
)
_RUN_STATES = frozenset({"queued", "running", "success", "failed"})


class ExternalTaskSensor(BaseSensorOperator):
    template_fields: ClassVar[Sequence[str]] = (
        "external_dag_id",
        "external_task_id",
        "external_task_ids",
        "external_task_group_id",
    )

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: Iterable[str] | None = None,
        external_task_group_id: str | None = None,
        allowed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        execution_delta: timedelta | None = None,
        execution_date_fn: Callable[..., Any] | None = None,
        check_existence: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = f"sensor {self.task_id!r}"
        given = [
            n
            for n, v in (
                ("external_task_id", external_task_id),
                ("external_task_ids", external_task_ids),
                ("external_task_group_id", external_task_group_id),
            )
            if v is not None
        ]
        if len(given) > 1 and set(given) != {"external_task_id", "external_task_ids"}:
            raise DagDefinitionError(
                f"{where}: give only one of external_task_id, external_task_ids and "
                "external_task_group_id",
                dag_id=self.dag_id,
            )
        if external_task_id is not None:
            if external_task_ids is not None:
                raise DagDefinitionError(
                    f"{where}: give external_task_id or external_task_ids, not both",
                    dag_id=self.dag_id,
                )
            external_task_ids = [external_task_id]
        ids = list(external_task_ids) if external_task_ids is not None else None
        if ids is not None and len(set(ids)) != len(ids):
            raise DagDefinitionError(f"{where}: duplicate task ids in external_task_ids")
        if execution_delta is not None and execution_date_fn is not None:
            raise DagDefinitionError(
                f"{where}: give execution_delta or execution_date_fn, not both",
                dag_id=self.dag_id,
            )
        self.allowed_states = list(allowed_states) if allowed_states else ["success"]
        self.skipped_states = list(skipped_states or [])
        self.failed_states = list(failed_states or [])
        by_task = ids is not None or external_task_group_id is not None
        legal = _TASK_STATES if by_task else _RUN_STATES
        for name, states in (
            ("allowed_states", self.allowed_states),
            ("skipped_states", self.skipped_states),
            ("failed_states", self.failed_states),
        ):
            bad = sorted(set(states) - legal)
            if bad:
                kind = "task" if by_task else "DAG run"
                raise DagDefinitionError(
                    f"{name} of {where} must be {kind} states ({', '.join(sorted(legal))}), "
                    f"not {', '.join(bad)}",
                    dag_id=self.dag_id,
                )
        overlap = set(self.allowed_states) & set(self.failed_states + self.skipped_states)
        if overlap:
            raise DagDefinitionError(
                f"{where}: states {sorted(overlap)} are both allowed and failed/skipped",
                dag_id=self.dag_id,
            )
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.external_task_ids = ids
        self.external_task_group_id = external_task_group_id
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn
        self.check_existence = bool(check_existence)
        self._checked = False

    def _dates(self, context: Context) -> list[datetime]:
        logical: datetime = context["logical_date"]
        if self.execution_delta is not None:
            return [logical - self.execution_delta]
        if self.execution_date_fn is not None:
            found = _call_date_fn(self.execution_date_fn, logical, context)
            return list(found) if isinstance(found, (list, tuple)) else [found]
        return [logical]

    def poke(self, context: Context) -> bool:
        ti = context["ti"]
        if self.check_existence and not self._checked:
            self._check_existence(ti)
        dates = self._dates(context)
        log.info(
            "Poking for %s %s of %s at %s ...",
            "tasks"
            if self.external_task_ids
            else "task group"
            if self.external_task_group_id
            else "the run",
            self.external_task_ids or self.external_task_group_id or "",
            self.external_dag_id,
            ", ".join(d.isoformat() for d in dates),
        )
        observed: list[list[str]] = [self._states(ti, date) for date in dates]
        found = [s for per_date in observed for s in per_date]
        if any(s in self.failed_states for s in found):
            message = f"the external DAG {self.external_dag_id} (or its tasks) failed"
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowException(message)
        if any(s in self.skipped_states for s in found):
            raise AirflowSkipException(
                f"the external DAG {self.external_dag_id} (or its tasks) reached a skipped state"
            )
        return all(
            per_date and all(s in self.allowed_states for s in per_date) for per_date in observed
        )

    def _states(self, ti: Any, date: datetime) -> list[str]:
        """The states that count at one logical date: the run's, or each watched task's
        instances' (missing tasks count as not there yet: an empty list)."""
        found = ti.external_states(self.external_dag_id, date)
        if found is None:
            return []
        run_state, tasks = found
        if self.external_task_ids is not None:
            if any(t not in tasks for t in self.external_task_ids):
                return []
            return [s for t in self.external_task_ids for s in tasks[t]]
        if self.external_task_group_id is not None:
            prefix = f"{self.external_task_group_id}."
            members = [t for t in tasks if t.startswith(prefix)]
            return [s for t in members for s in tasks[t]]
        return [run_state]

    def _check_existence(self, ti: Any) -> None:
        tasks = ti.dag_tasks(self.external_dag_id)
        if tasks is None:
            raise AirflowException(f"The external DAG {self.external_dag_id} does not exist.")
        missing = [t for t in self.external_task_ids or () if t not in tasks]
        if missing:
            raise AirflowException(
                f"The external task {missing[0]} in DAG {self.external_dag_id} does not exist."
            )
        group = self.external_task_group_id
        if group is not None and not any(t.startswith(f"{group}.") for t in tasks):
            raise AirflowException(
                f"The external task group '{group}' in DAG '{self.external_dag_id}' does not exist."
            )
        self._checked = True


def _call_date_fn(fn: Callable[..., Any], logical: datetime, context: Context) -> Any:
    """Airflow calls execution_date_fn with the logical date, then those context values its
    signature names as keywords (all of them when it takes **kwargs)."""
    parameters = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return fn(logical, **context)
    names = list(parameters)[1:]
    return fn(logical, **{k: v for k, v in context.items() if k in names})
