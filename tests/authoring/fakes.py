"""In-memory stand-ins for what the runner gives a task: a `ti` and a `dag_run`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slipstream.authoring.context import Context, make_context, set_current_context
from slipstream.authoring.dag import DAG
from slipstream.authoring.params import resolve_params
from slipstream.authoring.task import BaseOperator

LOGICAL_DATE = datetime(2024, 3, 5, 6, 7, 8, tzinfo=UTC)


@dataclass
class FakeTaskInstance:
    """Implements RuntimeTaskInstance over a dict of XComs: {(task_id, key): value}."""

    task_id: str
    dag_id: str = "test_dag"
    run_id: str = "manual__2024-03-05"
    try_number: int = 1
    map_index: int = -1
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value
        self.xcoms[(self.task_id, key)] = value

    def xcom_pull(
        self,
        task_ids: str | Sequence[str] | None = None,
        dag_id: str | None = None,
        key: str = "return_value",
        include_prior_dates: bool = False,
    ) -> Any:
        if isinstance(task_ids, str):
            return self.xcoms.get((task_ids, key))
        return [self.xcoms.get((task_id, key)) for task_id in task_ids or []]


@dataclass(frozen=True)
class FakeDagRun:
    """Implements RuntimeDagRun."""

    dag_id: str = "test_dag"
    run_id: str = "manual__2024-03-05"
    conf: Mapping[str, Any] = field(default_factory=dict)
    logical_date: datetime | None = LOGICAL_DATE
    run_type: str = "manual"
    external_trigger: bool = True
    data_interval_start: datetime | None = LOGICAL_DATE
    data_interval_end: datetime | None = LOGICAL_DATE


def context_for(
    task: BaseOperator,
    *,
    xcoms: dict[tuple[str, str], Any] | None = None,
    conf: Mapping[str, Any] | None = None,
    dag: DAG | None = None,
) -> Context:
    """The context a runner would build for `task` in a manual run."""
    owner = dag or task.dag
    assert owner is not None
    ti = FakeTaskInstance(task_id=task.task_id, dag_id=owner.dag_id, xcoms=dict(xcoms or {}))
    dag_run = FakeDagRun(dag_id=owner.dag_id, conf=dict(conf or {}))
    return make_context(
        dag=owner,
        task=task,
        ti=ti,
        dag_run=dag_run,
        params=resolve_params(owner.params_spec, dag_run.conf),
        logical_date=LOGICAL_DATE,
        data_interval_start=LOGICAL_DATE,
        data_interval_end=LOGICAL_DATE,
        try_number=1,
    )


def run_task(task: BaseOperator, context: Context) -> Any:
    """What a runner does with one try: render, execute inside the current context, push."""
    with set_current_context(context):
        task.render_template_fields(context)
        result = task.execute(context)
    if task.do_xcom_push and result is not None:
        if getattr(task, "multiple_outputs", False):
            for key, value in result.items():
                context["ti"].xcom_push(key, value)
        context["ti"].xcom_push("return_value", result)
    return result
