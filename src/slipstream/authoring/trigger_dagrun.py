"""TriggerDagRunOperator: a task that starts a run of another DAG, through the same trigger the
REST API uses (reached from the try like its XCom reads), and pushes the new run's id as the
XCom `trigger_run_id`, as Airflow does.

With `wait_for_completion` the task then waits for that run without holding a worker: the try
ends waiting (up_for_reschedule, or deferred with `deferrable`) with a resume request carrying
the triggered run's id, and every `poke_interval` the scheduler wakes the same try at
`check_triggered_run`, which reads the run's state through the try's reader and succeeds, fails
or waits again. A woken try never runs `execute`, so it never triggers twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from slipstream.authoring.context import Context
from slipstream.authoring.exceptions import AirflowException
from slipstream.authoring.schedules import as_utc
from slipstream.authoring.sensors.base import clock_of
from slipstream.authoring.task import BaseOperator
from slipstream.authoring.waiting import WaitRequest, WaitRequested
from slipstream.errors import DagDefinitionError, SkipTask

_log = logging.getLogger(__name__)
_OUTCOMES = {"created": "triggered", "reset": "cleared (reset_dag_run)", "exists": "exists"}
XCOM_RUN_ID = "trigger_run_id"
XCOM_LOGICAL_DATE_ISO = "trigger_logical_date_iso"
_RUN_STATES = frozenset({"queued", "running", "success", "failed"})


def _states(value: Sequence[str] | None, name: str, where: str, default: list[str]) -> list[str]:
    if value is None:
        return default
    states = [str(getattr(state, "value", state)) for state in value]
    unknown = sorted(set(states) - _RUN_STATES)
    if unknown:
        raise DagDefinitionError(
            f"{name} of {where}: {', '.join(map(repr, unknown))} is not a DAG run state "
            f"({', '.join(sorted(_RUN_STATES))})"
        )
    return states


class TriggerDagRunOperator(BaseOperator):
    """Triggers a run of `trigger_dag_id` with `conf` (checked against its params) at
    `logical_date` (default: now), with run id `trigger_run_id` (default: manual__<date>)."""

    template_fields: ClassVar[Sequence[str]] = (
        "trigger_dag_id",
        "trigger_run_id",
        "logical_date",
        "conf",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"conf": "py"}
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: Mapping[str, Any] | str | None = None,
        logical_date: str | datetime | None = None,
        execution_date: str | datetime | None = None,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: float | timedelta = 60,
        allowed_states: Sequence[str] | None = None,
        failed_states: Sequence[str] | None = None,
        skip_when_already_exists: bool = False,
        deferrable: bool = False,
        python_callable: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = f"task {self.task_id!r}"
        if python_callable is not None:
            raise DagDefinitionError(
                f"TriggerDagRunOperator python_callable ({where}) is Airflow 1.10's form, "
                "removed in Airflow 2: pass conf= (templated) instead"
            )
        if logical_date is not None and execution_date is not None:
            raise DagDefinitionError(
                f"give logical_date or execution_date (its Airflow 2 name) to {where}, not both"
            )
        if not isinstance(trigger_dag_id, str) or not trigger_dag_id:
            raise DagDefinitionError(f"trigger_dag_id of {where} must be a non-empty string")
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf: Mapping[str, Any] | str | None = conf
        self.logical_date = logical_date if logical_date is not None else execution_date
        self.reset_dag_run = bool(reset_dag_run)
        self.skip_when_already_exists = bool(skip_when_already_exists)
        self.wait_for_completion = bool(wait_for_completion)
        # As in Airflow, deferrable changes only how the task waits, so alone it changes nothing.
        self.deferrable = bool(deferrable)
        interval = (
            poke_interval.total_seconds() if isinstance(poke_interval, timedelta) else poke_interval
        )
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
            raise DagDefinitionError(f"poke_interval of {where} must be a number of seconds >= 0")
        self.poke_interval = float(interval)
        self.allowed_states = _states(allowed_states, "allowed_states", where, ["success"])
        self.failed_states = _states(failed_states, "failed_states", where, ["failed"])

    def execute(self, context: Context) -> None:
        conf = self.conf
        if conf is not None and not isinstance(conf, Mapping):
            raise TypeError(
                f"conf of task {self.task_id!r} must be a dict (rendered: {type(conf).__name__})"
            )
        run_id, logical_date, outcome = context["ti"].trigger_dag_run(
            str(self.trigger_dag_id),
            run_id=str(self.trigger_run_id) if self.trigger_run_id else None,
            conf=dict(conf or {}),
            logical_date=_as_date(self.logical_date, self.task_id),
            reset_dag_run=self.reset_dag_run,
            skip_when_already_exists=self.skip_when_already_exists,
        )
        _log.info("Run %s of DAG %s: %s", run_id, self.trigger_dag_id, _OUTCOMES[outcome])
        ti = context["ti"]
        ti.xcom_push(XCOM_RUN_ID, run_id)
        if logical_date is not None:
            ti.xcom_push(XCOM_LOGICAL_DATE_ISO, logical_date.isoformat())
        if outcome == "exists":
            raise SkipTask(
                f"run {run_id!r} of DAG {self.trigger_dag_id!r} already exists: skipped "
                "(skip_when_already_exists)"
            )
        if self.wait_for_completion:
            self._wait(context, str(self.trigger_dag_id), run_id, checks=0)

    def check_triggered_run(
        self, context: Context, event: object = None, *, dag_id: str, run_id: str
    ) -> None:
        """Where a waiting try resumes (its next_method): the triggered run's state decides
        whether the task succeeds, fails or waits one more poke_interval."""
        state = context["ti"].run_state(dag_id, run_id)
        if state is None:
            raise AirflowException(
                f"run {run_id!r} of DAG {dag_id!r}, which this task triggered and waits for, "
                "no longer exists"
            )
        # Failed states first: a state listed in both ends the task failed.
        if state in self.failed_states:
            raise AirflowException(f"{dag_id} failed with failed state {state}")
        if state in self.allowed_states:
            _log.info("Run %s of DAG %s ended in an allowed state: %s", run_id, dag_id, state)
            return
        checks = int(getattr(context["ti"], "poke_count", 0) or 0) + 1
        self._wait(context, dag_id, run_id, checks=checks)

    def _wait(self, context: Context, dag_id: str, run_id: str, *, checks: int) -> None:
        """End the try waiting poke_interval for run `run_id`, to resume at
        check_triggered_run with the run's id (so a woken try never triggers again);
        `checks`: how many times this try has read the run's state so far."""
        wake = clock_of(context).now() + timedelta(seconds=self.poke_interval)
        allowed = ", ".join(self.allowed_states)
        raise WaitRequested(
            WaitRequest(
                wake_at=wake,
                action="resume",
                deferred=self.deferrable,
                pokes=checks,
                next_method="check_triggered_run",
                next_kwargs={"dag_id": dag_id, "run_id": run_id},
                reason=(
                    f"waiting for run {run_id} of DAG {dag_id} to reach {allowed}; "
                    f"next check at {wake.isoformat()}"
                ),
            )
        )


def _as_date(value: object, task_id: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"logical_date of task {task_id!r} is not an ISO 8601 date: {value!r}"
            ) from None
        return as_utc(parsed)
    raise TypeError(f"logical_date of task {task_id!r} must be a datetime or an ISO string")
