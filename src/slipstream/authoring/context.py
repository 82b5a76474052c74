"""The runtime context a task try sees: its keys, the protocols of the `ti` and `dag_run` the
runner provides, and the "current context" that get_current_context() returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from slipstream.authoring import macros
from slipstream.authoring.schedules import as_utc

if TYPE_CHECKING:
    from slipstream.authoring.dag import DAG
    from slipstream.authoring.task import BaseOperator


class Context(dict[str, Any]):
    """What `execute(context)` receives: a plain dict keyed by Airflow's names.

    A dict (not a TypedDict) because task code adds keys (templates_dict) and Airflow code
    indexes it freely. make_context() fills: dag, task, ti, task_instance, dag_run, run_id,
    params, logical_date, execution_date, ds, ds_nodash, ts, ts_nodash, ts_nodash_with_tz,
    task_instance_key_str, data_interval_start, data_interval_end, try_number, macros, test_mode.
    """


class RuntimeTaskInstance(Protocol):
    """The `ti` in a context: one try of one task, able to exchange XComs."""

    @property
    def task_id(self) -> str: ...
    @property
    def dag_id(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def try_number(self) -> int: ...
    @property
    def map_index(self) -> int: ...

    def xcom_push(self, key: str, value: Any) -> None: ...

    def xcom_pull(
        self,
        task_ids: str | Sequence[str] | None = None,
        key: str = "return_value",
        dag_id: str | None = None,
        include_prior_dates: bool = False,
    ) -> Any:
        """The value for a single task id (None if absent); a list of values for a list."""
        ...


class RuntimeDagRun(Protocol):
    """The `dag_run` in a context."""

    @property
    def dag_id(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def conf(self) -> Mapping[str, Any]: ...
    @property
    def logical_date(self) -> datetime | None: ...
    @property
    def run_type(self) -> str: ...
    @property
    def external_trigger(self) -> bool: ...
    @property
    def data_interval_start(self) -> datetime | None: ...
    @property
    def data_interval_end(self) -> datetime | None: ...


def make_context(
    *,
    dag: DAG,
    task: BaseOperator,
    ti: RuntimeTaskInstance,
    dag_run: RuntimeDagRun,
    params: Mapping[str, Any],
    logical_date: datetime | None,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    try_number: int,
) -> Context:
    """Build the context of one try. `params` are the run's resolved params (see
    params.resolve_params). The date keys (ds, ts...) come from logical_date, or from
    data_interval_start when a run has no logical date; with neither they are left out."""
    interval_start = as_utc(data_interval_start) if data_interval_start else None
    interval_end = as_utc(data_interval_end) if data_interval_end else None
    context = Context(
        dag=dag,
        task=task,
        ti=ti,
        task_instance=ti,
        dag_run=dag_run,
        run_id=dag_run.run_id,
        params=dict(params),
        data_interval_start=interval_start,
        data_interval_end=interval_end,
        try_number=try_number,
        macros=macros,
        test_mode=False,
    )
    moment = as_utc(logical_date) if logical_date else interval_start
    context["logical_date"] = moment
    context["execution_date"] = moment  # Airflow 1/2 name, still used by older DAG files
    if moment is not None:
        ts = moment.isoformat()
        ds_nodash = moment.strftime("%Y%m%d")
        context.update(
            ds=moment.strftime("%Y-%m-%d"),
            ds_nodash=ds_nodash,
            ts=ts,
            ts_nodash=moment.strftime("%Y%m%dT%H%M%S"),
            ts_nodash_with_tz=ts.replace("-", "").replace(":", ""),
            task_instance_key_str=f"{dag.dag_id}__{task.task_id}__{ds_nodash}",
        )
    return context


# A ContextVar because get_current_context() is called deep inside user code with no handle on
# the runner; it is per thread, and the `with` below restores the previous value on exit.
_current_context: ContextVar[Context | None] = ContextVar(
    "slipstream_current_context", default=None
)


@contextmanager
def set_current_context(context: Context) -> Iterator[Context]:
    """Make `context` what get_current_context() returns while the block runs (the runner
    wraps each try's execute in this)."""
    token = _current_context.set(context)
    try:
        yield context
    finally:
        _current_context.reset(token)


def get_current_context() -> Context:
    """The context of the task running now; RuntimeError outside a running task."""
    context = _current_context.get()
    if context is None:
        raise RuntimeError(
            "get_current_context() was called outside a running task: no context is set"
        )
    return context
