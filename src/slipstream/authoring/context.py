"""The runtime context a task try sees: its keys, the protocols of the `ti` and `dag_run` the
runner provides, and the "current context" that get_current_context() returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from slipstream.authoring import macros
from slipstream.authoring.asset_events import OutletEventAccessors
from slipstream.authoring.lazy import LazyValue
from slipstream.authoring.schedules import as_utc

if TYPE_CHECKING:
    from slipstream.authoring.dag import DAG
    from slipstream.authoring.task import BaseOperator


class Context(dict[str, Any]):
    """What `execute(context)` receives: a plain dict keyed by Airflow's names.

    A dict (not a TypedDict) because task code adds keys (templates_dict) and Airflow code
    indexes it freely. make_context() fills: dag, task, ti, task_instance, dag_run, run_id,
    params, logical_date, execution_date, ds, ds_nodash, ts, ts_nodash, ts_nodash_with_tz,
    task_instance_key_str, data_interval_start, data_interval_end, try_number, macros,
    test_mode; Airflow 2's prev_ds, next_ds, prev_ds_nodash, next_ds_nodash, yesterday_ds,
    tomorrow_ds (and _nodash), prev_execution_date, next_execution_date; the lazily read
    prev_data_interval_start_success, prev_data_interval_end_success, prev_start_date_success,
    prev_end_date_success, prev_execution_date_success; inlets, outlets, outlet_events,
    triggering_dataset_events, triggering_asset_events; var and conn when provided.
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
        dag_id: str | None = None,
        key: str = "return_value",
        include_prior_dates: bool = False,
    ) -> Any:
        """The value for a single task id (None if absent); a list of values for a list."""
        ...


class PreviousRun(Protocol):
    """What the prev_*_success keys read of the DAG's previous successful run."""

    @property
    def logical_date(self) -> datetime | None: ...
    @property
    def data_interval_start(self) -> datetime | None: ...
    @property
    def data_interval_end(self) -> datetime | None: ...
    @property
    def start_date(self) -> datetime | None: ...
    @property
    def end_date(self) -> datetime | None: ...


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
    previous_success: Callable[[], PreviousRun | None] | None = None,
    variables: Any = None,
    connections: Any = None,
    triggering_events: Mapping[str, Any] | None = None,
) -> Context:
    """Build the context of one try. `params` are the run's resolved params (see
    params.resolve_params). The date keys (ds, ts...) come from logical_date, or from
    data_interval_start when a run has no logical date; with neither they are left out.

    `previous_success` reads the DAG's previous successful run: called only when a
    prev_*_success key is first used (a database read most tries never need). `variables`
    and `connections` become `var` and `conn` when given (slipstream.authoring.variables
    provides them; the runner wires them in).
    """
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
        ds_nodash = _ds_nodash(moment)
        context.update(
            ds=_ds(moment),
            ds_nodash=ds_nodash,
            ts=ts,
            ts_nodash=moment.strftime("%Y%m%dT%H%M%S"),
            ts_nodash_with_tz=ts.replace("-", "").replace(":", ""),
            task_instance_key_str=f"{dag.dag_id}__{task.task_id}__{ds_nodash}",
        )
        context.update(_neighbour_dates(dag, dag_run, moment, interval_end))
    context.update(_previous_success_keys(previous_success))
    # Assets: the events that triggered the run (empty unless asset-triggered), and where
    # task code sets the extra of the events its success records.
    events = triggering_events if triggering_events is not None else {}
    outlets = list(getattr(task, "outlets", None) or [])
    context.update(
        inlets=list(getattr(task, "inlets", None) or []),
        outlets=outlets,
        outlet_events=OutletEventAccessors(outlets),
        triggering_dataset_events=events,  # Airflow 2's name
        triggering_asset_events=events,  # Airflow 3's name
    )
    if variables is not None:
        context["var"] = variables
    if connections is not None:
        context["conn"] = connections
    return context


# f-strings, not strftime: strftime costs ~10x more, and every try builds these.
def _ds(value: datetime | None) -> str | None:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}" if value is not None else None


def _ds_nodash(value: datetime | None) -> str | None:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}" if value is not None else None


def _neighbour_dates(
    dag: DAG, dag_run: RuntimeDagRun, moment: datetime, interval_end: datetime | None
) -> dict[str, Any]:
    """Airflow 2's prev_/next_/yesterday_/tomorrow_ keys (Airflow 3 dropped them; DAG files
    written for 2.x still use them). For a run triggered by hand, previous and next are its
    own logical date, as in Airflow. The schedule's neighbours are LazyValues, as Airflow's
    deprecated keys are proxies: stepping a cron expression costs milliseconds per try."""
    yesterday, tomorrow = moment - timedelta(days=1), moment + timedelta(days=1)
    if dag_run.external_trigger:
        # Known at once, so plain values: no lazy machinery in the try's process.
        ds, ds_nodash = _ds(moment), _ds_nodash(moment)
        neighbours: dict[str, Any] = {
            "prev_execution_date": moment,
            "next_execution_date": moment,
            "prev_ds": ds,
            "next_ds": ds,
            "prev_ds_nodash": ds_nodash,
            "next_ds_nodash": ds_nodash,
        }
    else:
        found: list[tuple[datetime | None, datetime | None]] = []

        def scheduled() -> tuple[datetime | None, datetime | None]:
            if not found:
                upcoming = dag.timetable.next_interval(interval_end or moment, None)
                found.append(
                    (
                        dag.timetable.previous_schedule(moment),
                        upcoming.start if upcoming is not None else None,
                    )
                )
            return found[0]

        def lazy(side: int, shape: Callable[[datetime | None], Any]) -> LazyValue:
            return LazyValue(lambda: shape(scheduled()[side]))

        neighbours = {
            "prev_execution_date": lazy(0, _same),
            "next_execution_date": lazy(1, _same),
            "prev_ds": lazy(0, _ds),
            "next_ds": lazy(1, _ds),
            "prev_ds_nodash": lazy(0, _ds_nodash),
            "next_ds_nodash": lazy(1, _ds_nodash),
        }
    return {
        **neighbours,
        "yesterday_ds": _ds(yesterday),
        "tomorrow_ds": _ds(tomorrow),
        "yesterday_ds_nodash": _ds_nodash(yesterday),
        "tomorrow_ds_nodash": _ds_nodash(tomorrow),
    }


def _same(value: datetime | None) -> datetime | None:
    return value


def _previous_success_keys(
    read: Callable[[], PreviousRun | None] | None,
) -> dict[str, LazyValue]:
    """prev_*_success as lazy values over one shared read of the previous successful run.

    Lazy because the read is dear for a try: measured on this 2-core VM, the first database
    read from a try's process costs about 620 ms (SQLAlchemy is imported and the database
    opened; warm workers do not carry SQLAlchemy) and the query itself 8-30 ms, so a try
    that never touches these keys pays nothing. Carrying them in the Workload would cost the
    scheduler one indexed query per started run for every DAG, used or not."""
    found: list[PreviousRun | None] = []

    def previous() -> PreviousRun | None:
        if not found:
            found.append(read() if read is not None else None)
        return found[0]

    def field(name: str) -> LazyValue:
        return LazyValue(lambda: getattr(previous(), name, None))

    return {
        "prev_data_interval_start_success": field("data_interval_start"),
        "prev_data_interval_end_success": field("data_interval_end"),
        "prev_start_date_success": field("start_date"),
        "prev_end_date_success": field("end_date"),
        "prev_execution_date_success": field("logical_date"),  # Airflow 2's name
    }


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
