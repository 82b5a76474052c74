"""What task code sees of its own try and run: the concrete `ti` and `dag_run` of the context.

XComs travel as JSON text. Pulls look in this try's own pushes, then the upstream values the
scheduler prefetched into the Workload, and only then ask an XComReader (a database round trip).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from slipstream.authoring.lazy import LazyValue
from slipstream.clock import Clock, SystemClock
from slipstream.core.records import Run, RunType, Workload
from slipstream.core.states import RunState

RETURN_VALUE_KEY = "return_value"


class XComReader(Protocol):
    """Reads what the Workload did not carry: XComs (JSON text) and the previous successful
    run (for the prev_*_success context keys)."""

    def pull(
        self, run_pk: int, task_ids: Sequence[str], key: str | None, map_index: int | None = None
    ) -> dict[str, str]:
        """task_id -> JSON text for those of `task_ids` that pushed `key` (None: each task's
        newest XCom, whatever its key); others are absent. A mapped task's text is the list of
        its instances' values, or the one value of `map_index` when given."""
        ...

    def pull_across_runs(
        self,
        *,
        dag_id: str,
        key: str,
        task_ids: Sequence[str] | None,
        run_id: str | None = None,
        logical_date_at_most: datetime | None = None,
        map_index: int | None = None,
    ) -> dict[str, str]:
        """task_id -> JSON text of `key` in the newest of the runs asked for (one run of
        `dag_id`, or its runs up to a logical date) that has it: for a mapped task the list of
        its instances' values in that run, or the one of `map_index` when given. With
        `task_ids` None, the newest of any task."""
        ...

    def previous_success(self, dag_id: str, before: datetime) -> Run | None:
        """The newest successful run of `dag_id` with a logical date before `before`."""
        ...

    def external_states(
        self, dag_id: str, logical_date: datetime
    ) -> tuple[str, dict[str, list[str]]] | None:
        """(run state, task_id -> its instances' states) of `dag_id`'s run at `logical_date`;
        None when there is none (ExternalTaskSensor)."""
        ...

    def dag_tasks(self, dag_id: str) -> list[str] | None:
        """The task ids of `dag_id`'s latest version; None for an unknown DAG."""
        ...

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The state of run `run_id` of `dag_id`; None when there is no such run
        (TriggerDagRunOperator waiting for the run it triggered)."""
        ...

    def triggering_asset_events(self, run_pk: int) -> list[dict[str, Any]]:
        """The asset events that triggered run `run_pk`, oldest first (each with id, uri,
        extra, source_dag_id, source_run_id, source_task_id, source_map_index, timestamp)."""
        ...

    def trigger_dag_run(
        self,
        *,
        source: tuple[str, str, int, str],
        dag_id: str,
        run_id: str | None,
        conf: Any,
        logical_date: datetime | None,
        reset_dag_run: bool,
        skip_when_already_exists: bool,
    ) -> tuple[str, datetime | None, str]:
        """Trigger a run of `dag_id` for the try `source` (dag_id, run_id, run_pk, task_id):
        (run id, logical date, "created" | "reset" | "exists")."""
        ...


XComReaderFactory = Callable[[], XComReader]


class XComNotSerializable(TypeError):
    """A pushed value has no JSON form; the try fails with this."""

    def __init__(self, key: str, task_id: str, reason: str) -> None:
        super().__init__(
            f"XCom {key!r} pushed by task {task_id!r} is not JSON-serializable: {reason}"
        )
        self.key = key
        self.task_id = task_id


@dataclass(frozen=True, slots=True)
class RuntimeDagRun:
    """The run a try belongs to, as Airflow's `dag_run` in the context."""

    dag_id: str
    run_id: str
    conf: Mapping[str, Any]
    logical_date: datetime | None
    run_type: RunType
    external_trigger: bool
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    queued_at: datetime | None = None
    start_date: datetime | None = None
    state: RunState = RunState.RUNNING  # a str: `dag_run.state == "running"` holds in a try
    end_date: datetime | None = None

    @property
    def execution_date(self) -> datetime | None:
        """Airflow 1.10/2.x's name of the logical date."""
        return self.logical_date

    @classmethod
    def from_workload(cls, workload: Workload) -> RuntimeDagRun:
        return cls(
            dag_id=workload.dag_id,
            run_id=workload.run_id,
            conf=dict(workload.conf),
            logical_date=workload.logical_date,
            run_type=workload.run_type,
            external_trigger=workload.run_type == RunType.MANUAL,
            data_interval_start=workload.data_interval_start,
            data_interval_end=workload.data_interval_end,
            queued_at=workload.run_queued_at,
            start_date=workload.run_start_date,
            state=workload.run_state,
            end_date=workload.run_end_date,
        )


class RuntimeTaskInstance:
    """One running try, as Airflow's `ti`: identity plus xcom_push / xcom_pull."""

    def __init__(
        self, workload: Workload, xcom_reader_factory: XComReaderFactory | None = None
    ) -> None:
        self.dag_id = workload.dag_id
        self.run_id = workload.run_id
        self.task_id = workload.task_id
        self.try_number = workload.try_number
        self.max_tries = workload.max_tries
        self.map_index = workload.map_index
        self.logical_date = workload.logical_date
        self.execution_date = workload.logical_date  # Airflow 1/2 name
        # A sensor woken from up_for_reschedule/deferred: its first poke's start (where its
        # timeout is counted from) and the pokes so far; None and 0 on a try's first run.
        wait = workload.wait
        self.first_poke_at: datetime | None = wait.started_at if wait is not None else None
        self.poke_count = wait.pokes if wait is not None else 0
        # A reschedule-mode sensor retried: the first poke of the first try that waited, which
        # its timeout is still counted from (as Airflow); None before any try waited.
        self.sensor_started_at: datetime | None = workload.sensor_started_at
        self.clock: Clock = SystemClock()
        # Set by the runner once the try's task copy and run exist (Airflow's ti.task and
        # ti.dag_run).
        self.task: Any = None
        self.dag_run: RuntimeDagRun | None = None
        self._logical_date = workload.logical_date
        self._previous: tuple[Run | None] | None = None
        self._run_pk = workload.run_pk
        self._run_type = workload.run_type
        self._upstream = workload.upstream_xcoms
        # Upstream tasks of this task's mapped group: pulled at this try's own map index.
        self._same_index = frozenset(workload.same_index_upstream)
        self._reader_factory = xcom_reader_factory
        self._reader: XComReader | None = None
        self._pushed: dict[str, str] = {}
        # Values fetched through the reader, so a task pulling twice asks the database once.
        self._fetched: dict[tuple[str, str], str | None] = {}

    @property
    def pushed(self) -> tuple[tuple[str, str], ...]:
        """(key, JSON text) pairs pushed by this try, in first-push order; a re-push replaces."""
        return tuple(self._pushed.items())

    def xcom_push(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"XCom key must be a string, got {type(key).__name__}")
        try:
            self._pushed[key] = json.dumps(value, allow_nan=False, default=_lazy_values)
        except (TypeError, ValueError) as exc:
            raise XComNotSerializable(key, self.task_id, str(exc)) from None

    def xcom_pull(
        self,
        task_ids: str | Sequence[str] | None = None,
        dag_id: str | None = None,
        key: str | None = RETURN_VALUE_KEY,
        include_prior_dates: bool = False,
        *,
        map_indexes: int | Sequence[int] | None = None,
        default: Any = None,
        run_id: str | None = None,
    ) -> Any:
        """A value for one task id (`default` when nothing was pushed), a list for several. A
        mapped task's value is the list of what its instances pushed; `map_indexes` picks one
        instance's value (an int) or several (a list), as Airflow's.

        Airflow's arguments, in Airflow's order. No `task_ids` means this task (Airflow 3)
        and, when it pushed nothing under `key`, the newest value any task of the run pushed
        (Airflow 2). `include_prior_dates` also searches the DAG's earlier runs by logical
        date, newest first (a mapped task's value is then the list of its instances' values
        in the newest run that has any); `dag_id` (another DAG) reads that DAG's run with
        this run's run_id, or `run_id`. `map_indexes` obeys the three as well.
        """
        if key is None:
            # Airflow 1.10/2: "pass None to remove the key filter".
            return self._pull_any_key(task_ids, dag_id, include_prior_dates, map_indexes, run_id)
        if map_indexes is not None and _as_list(map_indexes) != [-1]:
            return self._pull_indexes(
                task_ids, key, map_indexes, dag_id or self.dag_id, include_prior_dates, run_id
            )
        single = task_ids is None or isinstance(task_ids, str)
        ids = None if task_ids is None else _as_list(task_ids)
        values = self._pull(ids, dag_id or self.dag_id, key, include_prior_dates, run_id)
        if single:
            return default if values[0] is None else values[0]
        return values

    def _pull(
        self,
        ids: list[str] | None,
        dag_id: str,
        key: str,
        include_prior_dates: bool,
        run_id: str | None,
    ) -> list[Any]:
        own_run = dag_id == self.dag_id and run_id in (None, self.run_id)
        if own_run:
            values = self._pull_many(ids or [self.task_id], key)
            if ids is None and values[0] is None:
                values = [_decode(next(iter(self._read_any(key).values()), None))]
        else:
            values = [None] * len(ids or [self.task_id])
        missing = [i for i, value in enumerate(values) if value is None]
        scope = self._elsewhere(own_run, include_prior_dates, run_id)
        if not missing or scope is None:
            return values
        wanted = None if ids is None else [ids[i] for i in missing]
        found = self._read_across(
            dag_id=dag_id,
            key=key,
            task_ids=wanted if wanted is not None else [self.task_id],
            **scope,
        )
        if ids is None and not found:
            found = self._read_across(dag_id=dag_id, key=key, task_ids=None, **scope)
            return [_decode(next(iter(found.values()), None))]
        for index in missing:
            task_id = self.task_id if ids is None else ids[index]
            values[index] = _decode(found.get(task_id))
        return values

    def _elsewhere(
        self, own_run: bool, include_prior_dates: bool, run_id: str | None
    ) -> dict[str, Any] | None:
        """Which runs a pull searches beyond this one (the reader's run_id and
        logical_date_at_most), or None when it searches none."""
        if own_run and not include_prior_dates:
            return None
        at_most = self._logical_date if include_prior_dates else None
        if include_prior_dates and at_most is None and own_run:
            return None  # a run without a logical date has no earlier runs to search
        return {
            "run_id": None if include_prior_dates and run_id is None else (run_id or self.run_id),
            "logical_date_at_most": at_most,
        }

    def _read_any(self, key: str) -> dict[str, str]:
        for task_id, pushed in self._upstream.items():
            if key in pushed:
                return {task_id: pushed[key]}
        return self._read_across(dag_id=self.dag_id, key=key, task_ids=None, run_id=self.run_id)

    def _read_across(self, **query: Any) -> dict[str, str]:
        reader = self._reader_or_none()
        return {} if reader is None else reader.pull_across_runs(**query)

    def previous_success(self) -> Run | None:
        """The DAG's newest successful run before this one (read once, when first asked)."""
        if self._previous is None:
            reader = self._reader_or_none()
            found = None
            if reader is not None and self._logical_date is not None:
                found = reader.previous_success(self.dag_id, self._logical_date)
            self._previous = (found,)
        return self._previous[0]

    def external_states(
        self, dag_id: str, logical_date: datetime
    ) -> tuple[str, dict[str, list[str]]] | None:
        """Another DAG's run at `logical_date`: its state and its tasks' (ExternalTaskSensor)."""
        return self._required_reader("ExternalTaskSensor").external_states(dag_id, logical_date)

    def dag_tasks(self, dag_id: str) -> list[str] | None:
        return self._required_reader("ExternalTaskSensor").dag_tasks(dag_id)

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The state of another DAG's run, read now (TriggerDagRunOperator's wait)."""
        return self._required_reader("TriggerDagRunOperator").run_state(dag_id, run_id)

    def _required_reader(self, what: str) -> XComReader:
        reader = self._reader_or_none()
        if reader is None:
            raise RuntimeError(f"{what} needs the database, which this try cannot reach")
        return reader

    def triggering_asset_events(self) -> list[dict[str, Any]]:
        """The events that triggered this run (read when task code first looks at them)."""
        reader = self._reader_or_none()
        if reader is None or self._run_type is not RunType.ASSET_TRIGGERED:
            return []
        return reader.triggering_asset_events(self._run_pk)

    def trigger_dag_run(self, dag_id: str, **options: Any) -> tuple[str, datetime | None, str]:
        """Start a run of another DAG through the trigger service (TriggerDagRunOperator)."""
        reader = self._reader_or_none()
        if reader is None:
            raise RuntimeError(
                f"cannot trigger DAG {dag_id!r}: this try has no access to the database"
            )
        source = (self.dag_id, self.run_id, self._run_pk, self.task_id)
        return reader.trigger_dag_run(source=source, dag_id=dag_id, **options)

    def get_template_context(self) -> Any:
        """The context of this try (Airflow 2's ti.get_template_context())."""
        from slipstream.authoring.context import get_current_context

        return get_current_context()

    def render_templates(self, context: Any = None, jinja_env: Any = None) -> Any:
        """Render the task's templated fields against `context` (default: this try's) and
        return the task, as Airflow's ti.render_templates()."""
        if self.task is None:
            raise RuntimeError("render_templates() needs the try's task: none is set")
        self.task.render_template_fields(context or self.get_template_context(), jinja_env)
        return self.task

    def _pull_any_key(
        self,
        task_ids: str | Sequence[str] | None,
        dag_id: str | None,
        include_prior_dates: bool,
        map_indexes: int | Sequence[int] | None,
        run_id: str | None,
    ) -> Any:
        """Each named task's newest XCom of this run, whatever its key (a task's return value
        counts as its last push, as in Airflow, where it is pushed after execute returns)."""
        elsewhere = dag_id not in (None, self.dag_id) or run_id not in (None, self.run_id)
        if task_ids is None or elsewhere or include_prior_dates or map_indexes is not None:
            raise NotImplementedError(
                "xcom_pull(key=None) reads the named task_ids of this run only: give task_ids, "
                "and no dag_id, run_id, include_prior_dates or map_indexes"
            )
        ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
        texts: dict[str, str | None] = {}
        missing = []
        for task_id in ids:
            if task_id == self.task_id and self._pushed:
                pushed = self._pushed
                texts[task_id] = pushed.get(RETURN_VALUE_KEY, list(pushed.values())[-1])
            else:
                missing.append(task_id)
        if missing:
            found = self._read([t for t in missing if t not in self._same_index], None)
            for task_id in missing:
                if task_id in self._same_index:
                    # What the workload carried is this map index's: the newest of those.
                    texts[task_id] = _newest_prefetched(self._upstream, task_id)
                else:
                    texts[task_id] = found.get(task_id, _newest_prefetched(self._upstream, task_id))
        values = [_decode(texts[task_id]) for task_id in ids]
        return values[0] if isinstance(task_ids, str) else values

    def _pull_many(self, task_ids: list[str], key: str) -> list[Any]:
        texts: dict[str, str | None] = {}
        missing: list[str] = []
        for task_id in task_ids:
            text = self._local(task_id, key)
            if text is not None:
                texts[task_id] = text
            elif (task_id, key) in self._fetched:
                texts[task_id] = self._fetched[task_id, key]
            elif task_id not in missing:
                missing.append(task_id)
        if missing:
            found = self._read([t for t in missing if t not in self._same_index], key)
            for task_id in missing:
                if task_id in self._same_index:
                    text = self._read([task_id], key, self.map_index).get(task_id)
                else:
                    text = found.get(task_id)
                texts[task_id] = self._fetched[task_id, key] = text
        return [_decode(texts[task_id]) for task_id in task_ids]

    def _pull_indexes(
        self,
        task_ids: str | Sequence[str] | None,
        key: str,
        map_indexes: int | Sequence[int],
        dag_id: str,
        include_prior_dates: bool,
        run_id: str | None,
    ) -> Any:
        if task_ids is None:
            names = [self.task_id]
        else:
            names = [task_ids] if isinstance(task_ids, str) else list(task_ids)
        indexes = [map_indexes] if isinstance(map_indexes, int) else list(map_indexes)
        own_run = dag_id == self.dag_id and run_id in (None, self.run_id)
        scope = self._elsewhere(own_run, include_prior_dates, run_id)
        values = []
        for task_id in names:
            for index in indexes:
                value = self._own_index(task_id, key, index) if own_run else None
                if value is None and scope is not None:
                    found = self._read_across(
                        dag_id=dag_id, key=key, task_ids=[task_id], map_index=index, **scope
                    )
                    value = _decode(found.get(task_id))
                values.append(value)
        single = isinstance(map_indexes, int) and (task_ids is None or isinstance(task_ids, str))
        return values[0] if single else values

    def _own_index(self, task_id: str, key: str, index: int) -> Any:
        """One instance's value in this run (index -1: an unmapped task's one value)."""
        if index < 0:
            return self._pull_many([task_id], key)[0]
        if task_id == self.task_id and index == self.map_index and key in self._pushed:
            return _decode(self._pushed[key])
        return _decode(self._read([task_id], key, index).get(task_id))

    def _local(self, task_id: str, key: str) -> str | None:
        if task_id == self.task_id and key in self._pushed:
            return self._pushed[key]
        return self._upstream.get(task_id, {}).get(key)

    def _read(
        self, task_ids: list[str], key: str | None, map_index: int | None = None
    ) -> dict[str, str]:
        reader = self._reader_or_none() if task_ids else None
        if reader is None:
            return {}
        if map_index is None:
            return reader.pull(self._run_pk, task_ids, key)
        return reader.pull(self._run_pk, task_ids, key, map_index)

    def close(self) -> None:
        """Release the reader's database handle, if one was opened."""
        reader, self._reader = self._reader, None
        close = getattr(reader, "close", None)
        if close is not None:
            close()

    def _reader_or_none(self) -> XComReader | None:
        if self._reader_factory is None:
            return None
        if self._reader is None:
            # Built on first need, in the try's own process: no connection is shared across fork.
            self._reader = self._reader_factory()
        return self._reader


def _lazy_values(value: Any) -> Any:
    # Context values computed on first use (prev_ds...) are pushed as what they stand for.
    if isinstance(value, LazyValue):
        return value.resolve()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, (str, int)) else list(value)


def _newest_prefetched(upstream: Mapping[str, Mapping[str, str]], task_id: str) -> str | None:
    """Without a database reader: the task's return value if the workload carried one, else
    any key it carried."""
    pushed = upstream.get(task_id, {})
    return pushed.get(RETURN_VALUE_KEY) or next(iter(pushed.values()), None)


def _decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)
