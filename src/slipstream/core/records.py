"""Frozen records that cross layer boundaries: what store returns and what executors carry.

ORM rows never leave store; these plain values do. A Workload holds everything a worker needs to
run one try without asking the database, and TaskEvents carry what happened back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from slipstream.core.states import RunState, TaskState


class RunType(StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    BACKFILL = "backfill"
    # Airflow 2's name, which the v1 API's enum has (Airflow 3 says "asset_triggered").
    ASSET_TRIGGERED = "dataset_triggered"


class ExitReason(StrEnum):
    """Why a try ended. The infrastructure reasons draw on a separate retry budget."""

    SUCCESS = "success"
    SKIPPED = "skipped"
    TASK_ERROR = "task_error"  # the task raised, or exited non-zero
    FAIL_NOW = "fail_now"  # the task raised FailTask: no retries
    TIMEOUT = "timeout"  # execution_timeout passed; the try was killed
    PROCESS_KILLED = "process_killed"  # killed by a signal nobody in Slipstream sent (OOM...)
    WORKER_LOST = "worker_lost"  # the worker process running it died
    SCHEDULER_LOST = "scheduler_lost"  # its scheduler died; nobody was watching it any more
    MARKED = "marked"  # a person set the state
    WAITING = "waiting"  # the try ended waiting to be woken (up_for_reschedule, deferred)
    # No worker took the try from its queue within the queued timeout (Airflow's
    # task_queued_timeout); the task's own retries decide what follows, as in Airflow.
    QUEUED_TIMEOUT = "queued_timeout"

    @property
    def is_infrastructure(self) -> bool:
        return self in (
            ExitReason.PROCESS_KILLED,
            ExitReason.WORKER_LOST,
            ExitReason.SCHEDULER_LOST,
        )


class WakeAction(StrEnum):
    """What a waiting try (up_for_reschedule or deferred) asks for at its wake-up time."""

    POKE = "poke"  # run the same try again: the sensor pokes once more
    RESUME = "resume"  # run the same try again, calling next_method (a deferral's end)
    SUCCEED = "succeed"  # nothing left to run (a time sensor's moment): the task succeeds


@dataclass(frozen=True, slots=True)
class Wait:
    """How a try that ended waiting is to be woken, as it reported it; stored with its task
    instance so that a scheduler restart keeps the same wake-up time and timeout budget."""

    wake_at: datetime
    action: WakeAction
    started_at: datetime  # the first poke's start: where the sensor's timeout is counted from
    timeout_at: datetime | None = None  # when waiting longer ends the task (on_timeout)
    # failed (a sensor: no retry), skipped (soft_fail), or up_for_retry: a failure the task's
    # retries decide when the timeout comes (a non-sensor's deferral: TaskDeferralTimeout).
    on_timeout: TaskState = TaskState.FAILED
    pokes: int = 1  # pokes so far in this try (exponential backoff counts them)
    next_method: str | None = None  # RESUME: the method to call, as Airflow's next_method
    next_kwargs: str | None = None  # RESUME: its keyword arguments, JSON text
    event: str | None = None  # RESUME: the trigger's event (an ISO moment for time triggers)
    reason: str = ""  # why it waits, for the log and the UI
    deferred: bool = False  # shown as deferred (else up_for_reschedule)
    # Runs of this try lost in a row to the infrastructure since its last poke or resume
    # ended (core.planning.wait_after_loss): bounded by the infrastructure retry budget.
    lost: int = 0

    @property
    def state(self) -> TaskState:
        """The state the task waits in."""
        return TaskState.DEFERRED if self.deferred else TaskState.UP_FOR_RESCHEDULE

    def due(self) -> tuple[datetime, TaskState]:
        """When the scheduler acts on this wait and the state it then moves the task to: the
        timeout's outcome if the timeout comes first, else a new poke/resume or success."""
        if self.timeout_at is not None and self.timeout_at <= self.wake_at:
            return self.timeout_at, self.on_timeout
        if self.action is WakeAction.SUCCEED:
            return self.wake_at, TaskState.SUCCESS
        return self.wake_at, TaskState.SCHEDULED

    def to_json(self) -> dict[str, Any]:
        return {
            "wake_at": self.wake_at.isoformat(),
            "action": self.action.value,
            "started_at": self.started_at.isoformat(),
            "timeout_at": self.timeout_at.isoformat() if self.timeout_at else None,
            "on_timeout": self.on_timeout.value,
            "pokes": self.pokes,
            "next_method": self.next_method,
            "next_kwargs": self.next_kwargs,
            "event": self.event,
            "reason": self.reason,
            "deferred": self.deferred,
            "lost": self.lost,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Wait:
        timeout_at = data.get("timeout_at")
        return cls(
            wake_at=datetime.fromisoformat(data["wake_at"]),
            action=WakeAction(data["action"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            timeout_at=datetime.fromisoformat(timeout_at) if timeout_at else None,
            on_timeout=TaskState(data.get("on_timeout", TaskState.FAILED.value)),
            pokes=int(data.get("pokes", 1)),
            next_method=data.get("next_method"),
            next_kwargs=data.get("next_kwargs"),
            event=data.get("event"),
            reason=str(data.get("reason", "")),
            deferred=bool(data.get("deferred", False)),
            lost=int(data.get("lost", 0)),
        )


@dataclass(frozen=True, slots=True)
class DagRecord:
    dag_id: str
    is_paused: bool
    is_active: bool
    fileloc: str
    version_id: int | None
    version_hash: str | None
    description: str | None = None
    tags: tuple[str, ...] = ()
    owners: str = "airflow"
    schedule: str | None = None
    max_active_runs: int = 16
    max_active_tasks: int = 16
    next_dagrun_create_after: datetime | None = None
    last_parsed_at: datetime | None = None
    # The next scheduled run's data interval (its start is that run's logical date).
    next_dagrun_data_interval_start: datetime | None = None
    next_dagrun_data_interval_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class DagVersion:
    id: int
    dag_id: str
    version_hash: str
    structure: Mapping[str, Any]
    created_at: datetime
    source_sha256: str | None = None  # of the DAG file's bytes as parsed (None: not recorded)


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    dag_id: str
    run_id: str
    state: RunState
    run_type: RunType
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    conf: Mapping[str, Any]
    queued_at: datetime
    start_date: datetime | None
    end_date: datetime | None
    version_id: int
    external_trigger: bool = True
    note: str | None = None
    state_reason: str | None = None
    triggered_by: str | None = None


@dataclass(frozen=True, slots=True)
class TaskInstance:
    run_pk: int
    dag_id: str
    run_id: str
    task_id: str
    state: TaskState
    try_number: int  # the latest try started; 0 before the first
    max_tries: int  # the task's retries
    operator: str = "PythonOperator"
    queued_at: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    next_retry_at: datetime | None = None
    hostname: str | None = None
    pid: int | None = None
    state_reason: str | None = None
    infra_failures: int = 0
    pool: str = "default_pool"
    queue: str = "default"
    priority_weight: int = 1
    map_index: int = -1  # 0..N-1 for an expanded mapped task, -1 otherwise
    pool_slots: int = 1
    # While up_for_reschedule or deferred: when the scheduler acts, and the state it moves
    # the task to then (scheduled for another poke, success, or the timeout's outcome).
    wake_at: datetime | None = None
    wake_target: TaskState | None = None
    # The wait the current try reported; kept while that try is woken and runs again.
    wait: Wait | None = None
    resumes_try: bool = False  # scheduled again by a wake-up: its next queueing is the same try
    # A reschedule-mode sensor's first poke in this set of tries (kept across its retries,
    # forgotten by a clear): where a later try counts the sensor's timeout from, as Airflow.
    sensor_started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskTry:
    run_pk: int
    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    state: TaskState
    queued_at: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    hostname: str | None
    pid: int | None
    exit_reason: ExitReason | None
    exit_code: int | None
    error: str | None
    map_index: int = -1


class TaskKey(NamedTuple):
    """Names one try of one task instance (a task, or one index of a mapped task) in one run."""

    run_pk: int
    task_id: str
    try_number: int
    map_index: int = -1


@dataclass(frozen=True, slots=True)
class Workload:
    """One try of one task, with everything the worker needs and nothing it must look up."""

    run_pk: int
    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    max_tries: int
    fileloc: str
    version_hash: str
    run_type: RunType
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    conf: Mapping[str, Any]
    log_path: str
    execution_timeout: float | None = None
    queue: str = "default"
    pool: str = "default_pool"
    pool_slots: int = 1  # what the try holds of its pool while queued or running
    # Upstream tasks' XComs (task_id -> key -> JSON text), fetched when the try is queued so
    # that TaskFlow arguments need no database round trip from the worker.
    upstream_xcoms: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # The DAG file's text as it was when the run started, sent only when the file has changed
    # since: a run keeps the code of the version it started with.
    source: str | None = None
    # Tries of this task lost to infrastructure so far: with max_tries, what the try's own
    # process needs to tell a retry from a final failure (core.planning.will_retry).
    infra_failures: int = 0
    map_index: int = -1
    # Set when mapped tasks expand over this task's return value: the try must return a list
    # or dict of at most this many items and report its length (Airflow's max_map_length).
    map_length_limit: int | None = None
    # Upstream tasks of the same mapped task group: their XComs above (and what the try pulls
    # of them) are those of this try's map index, not the list across indexes.
    same_index_upstream: tuple[str, ...] = ()
    # A try woken from up_for_reschedule or deferred: what it reported when it began waiting
    # (the first poke's start, the pokes so far, the method to resume at).
    wait: Wait | None = None
    # A reschedule-mode sensor retried: the first poke of its first try that waited (since
    # the last clear), which its timeout is counted from (Airflow reads the first try's first
    # reschedule). None until a try of this set of tries ended up_for_reschedule.
    sensor_started_at: datetime | None = None
    # The run's own dates, for `dag_run.queued_at` / `dag_run.start_date` in the context.
    run_queued_at: datetime | None = None
    run_start_date: datetime | None = None
    # `dag_run.state` / `dag_run.end_date`: a try runs in a running run; a DAG callback's
    # workload carries the run's end.
    run_state: RunState = RunState.RUNNING
    run_end_date: datetime | None = None
    # The DAG version the run is pinned to, and the SHA-256 of its file's bytes: a worker
    # imports its own copy of the file only when it has that digest, else it reads the
    # version's text from the database (runner.dag_sources). None: not known (not checked).
    version_id: int | None = None
    source_sha256: str | None = None
    # Set by the worker once it has chosen the text the try imports: where that text came
    # from, the try log's second line.
    source_origin: str = ""

    @property
    def key(self) -> TaskKey:
        return TaskKey(self.run_pk, self.task_id, self.try_number, self.map_index)

    def to_json(self) -> dict[str, Any]:
        """A versioned JSON object of every field, for a message to a worker on another
        machine (the Celery executor): JSON only, so a message never carries code and any
        worker version can read it, or refuse it by name."""
        return {
            "v": WORKLOAD_VERSION,
            "run_pk": self.run_pk,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "try_number": self.try_number,
            "max_tries": self.max_tries,
            "fileloc": self.fileloc,
            "version_hash": self.version_hash,
            "run_type": self.run_type.value,
            "logical_date": _moment(self.logical_date),
            "data_interval_start": _moment(self.data_interval_start),
            "data_interval_end": _moment(self.data_interval_end),
            "conf": dict(self.conf),
            "log_path": self.log_path,
            "execution_timeout": self.execution_timeout,
            "queue": self.queue,
            "pool": self.pool,
            "pool_slots": self.pool_slots,
            "upstream_xcoms": {task: dict(keys) for task, keys in self.upstream_xcoms.items()},
            "source": self.source,
            "infra_failures": self.infra_failures,
            "map_index": self.map_index,
            "map_length_limit": self.map_length_limit,
            "same_index_upstream": list(self.same_index_upstream),
            "wait": self.wait.to_json() if self.wait is not None else None,
            "sensor_started_at": _moment(self.sensor_started_at),
            "run_queued_at": _moment(self.run_queued_at),
            "run_start_date": _moment(self.run_start_date),
            "run_state": self.run_state.value,
            "run_end_date": _moment(self.run_end_date),
            "version_id": self.version_id,
            "source_sha256": self.source_sha256,
            "source_origin": self.source_origin,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Workload:
        """The workload `to_json` wrote; ValueError names what is wrong with a message of
        another version or shape (it is never half read)."""
        version = data.get("v") if isinstance(data, Mapping) else None
        if version != WORKLOAD_VERSION:
            raise ValueError(
                f"workload message version {version!r} is not {WORKLOAD_VERSION} (sent by"
                " another Slipstream version)"
            )
        try:
            wait = data["wait"]
            conf = data["conf"]
            if not isinstance(conf, Mapping):
                raise TypeError(f"conf is {type(conf).__name__}, not an object")
            return cls(
                run_pk=int(data["run_pk"]),
                dag_id=str(data["dag_id"]),
                run_id=str(data["run_id"]),
                task_id=str(data["task_id"]),
                try_number=int(data["try_number"]),
                max_tries=int(data["max_tries"]),
                fileloc=str(data["fileloc"]),
                version_hash=str(data["version_hash"]),
                run_type=RunType(data["run_type"]),
                logical_date=_read_moment(data["logical_date"]),
                data_interval_start=_read_moment(data["data_interval_start"]),
                data_interval_end=_read_moment(data["data_interval_end"]),
                conf=dict(conf),
                log_path=str(data["log_path"]),
                execution_timeout=_optional_float(data["execution_timeout"]),
                queue=str(data["queue"]),
                pool=str(data["pool"]),
                pool_slots=int(data["pool_slots"]),
                upstream_xcoms={
                    str(task): {str(k): str(v) for k, v in keys.items()}
                    for task, keys in data["upstream_xcoms"].items()
                },
                source=_optional_str(data["source"]),
                infra_failures=int(data["infra_failures"]),
                map_index=int(data["map_index"]),
                map_length_limit=_optional_int(data["map_length_limit"]),
                same_index_upstream=tuple(str(t) for t in data["same_index_upstream"]),
                wait=Wait.from_json(wait) if wait is not None else None,
                sensor_started_at=_read_moment(data["sensor_started_at"]),
                run_queued_at=_read_moment(data["run_queued_at"]),
                run_start_date=_read_moment(data["run_start_date"]),
                run_state=RunState(data["run_state"]),
                run_end_date=_read_moment(data["run_end_date"]),
                version_id=_optional_int(data["version_id"]),
                source_sha256=_optional_str(data["source_sha256"]),
                source_origin=str(data["source_origin"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"workload message is malformed: {exc!r}") from None


# The shape of Workload.to_json (and CallbackRequest.to_json); a reader refuses any other.
WORKLOAD_VERSION = 1


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _read_moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO date and time, got {value!r}")
    return datetime.fromisoformat(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class TaskStarted:
    key: TaskKey
    pid: int
    hostname: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TaskFinished:
    """A try ended. `state` is success, failed or skipped; retry decisions are the scheduler's."""

    key: TaskKey
    state: TaskState
    exit_reason: ExitReason
    at: datetime
    error: str | None = None
    exit_code: int | None = None
    xcoms: tuple[tuple[str, str], ...] = ()  # (key, JSON text), pushed by the try
    skip_downstream: tuple[str, ...] = ()  # task ids a branch or short-circuit chose to skip
    # The try's own process ran the callbacks (and e-mail) of this outcome; when False after a
    # failure, the scheduler asks the executor to run them (a try killed or lost).
    callbacks_done: bool = False
    map_length: int | None = None  # items in the return value, when mapped tasks expand over it
    wait: Wait | None = None  # state up_for_reschedule or deferred: how to wake it
    # (asset URI, JSON object text): what the try set in outlet_events[asset].extra.
    asset_extras: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A versioned JSON object of every field, for the outbox (`try_outcomes.payload`): it
        must outlive the process that wrote it, and be read by another version's scheduler."""
        return {
            "v": OUTCOME_VERSION,
            "run_pk": self.key.run_pk,
            "task_id": self.key.task_id,
            "try_number": self.key.try_number,
            "map_index": self.key.map_index,
            "state": self.state.value,
            "exit_reason": self.exit_reason.value,
            "at": self.at.isoformat(),
            "error": self.error,
            "exit_code": self.exit_code,
            "xcoms": [list(pair) for pair in self.xcoms],
            "skip_downstream": list(self.skip_downstream),
            "callbacks_done": self.callbacks_done,
            "map_length": self.map_length,
            "wait": self.wait.to_json() if self.wait is not None else None,
            "asset_extras": [list(pair) for pair in self.asset_extras],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskFinished:
        """The outcome `to_json` wrote; ValueError names what is wrong with a payload of
        another version or shape (it is never half read)."""
        version = data.get("v")
        if version != OUTCOME_VERSION:
            raise ValueError(
                f"outcome payload version {version!r} is not {OUTCOME_VERSION} (written by"
                " another Slipstream version)"
            )
        try:
            wait = data["wait"]
            return cls(
                key=TaskKey(
                    int(data["run_pk"]),
                    str(data["task_id"]),
                    int(data["try_number"]),
                    int(data["map_index"]),
                ),
                state=TaskState(data["state"]),
                exit_reason=ExitReason(data["exit_reason"]),
                at=datetime.fromisoformat(data["at"]),
                error=data["error"],
                exit_code=data["exit_code"],
                xcoms=tuple((str(k), str(v)) for k, v in data["xcoms"]),
                skip_downstream=tuple(str(t) for t in data["skip_downstream"]),
                callbacks_done=bool(data["callbacks_done"]),
                map_length=data["map_length"],
                wait=Wait.from_json(wait) if wait is not None else None,
                asset_extras=tuple((str(u), str(e)) for u, e in data["asset_extras"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"outcome payload is malformed: {exc!r}") from None


# The shape of TaskFinished.to_json; a reader refuses any other.
OUTCOME_VERSION = 1

TaskEvent = TaskStarted | TaskFinished


class CallbackKind(StrEnum):
    """Callbacks the scheduler asks an executor to run, when no try's process could."""

    TASK_FAILURE = "on_failure_callback"
    TASK_RETRY = "on_retry_callback"
    # A soft_fail sensor's timeout that the scheduler ended itself: skipped, which Airflow
    # reaches by raising a skip in the task, so its on_skipped_callback runs.
    TASK_SKIPPED = "on_skipped_callback"
    DAG_SUCCESS = "dag_on_success_callback"
    DAG_FAILURE = "dag_on_failure_callback"

    @property
    def is_dag_level(self) -> bool:
        return self in (CallbackKind.DAG_SUCCESS, CallbackKind.DAG_FAILURE)


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """Run a task's or a DAG's callbacks in a forked child; changes no state.

    `workload` names the DAG version and gives the context: the try's for task callbacks, the
    run's last task instance (by task id, as Airflow picks it) for DAG callbacks, or one with
    an empty task_id when the run has no task. Output goes to `log_path`.
    """

    id: int
    kind: CallbackKind
    workload: Workload
    log_path: str
    error: str | None = None  # the failure, as `exception` in the context (task callbacks)
    reason: str | None = None  # Airflow's `reason` for DAG callbacks: success, task_failure...

    def to_json(self) -> dict[str, Any]:
        """A versioned JSON object of every field (its workload's codec inside), for a message
        to a worker on another machine."""
        return {
            "v": WORKLOAD_VERSION,
            "id": self.id,
            "kind": self.kind.value,
            "workload": self.workload.to_json(),
            "log_path": self.log_path,
            "error": self.error,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallbackRequest:
        """The request `to_json` wrote; ValueError names what is wrong."""
        version = data.get("v") if isinstance(data, Mapping) else None
        if version != WORKLOAD_VERSION:
            raise ValueError(
                f"callback request message version {version!r} is not {WORKLOAD_VERSION}"
                " (sent by another Slipstream version)"
            )
        try:
            return cls(
                id=int(data["id"]),
                kind=CallbackKind(data["kind"]),
                workload=Workload.from_json(data["workload"]),
                log_path=str(data["log_path"]),
                error=_optional_str(data["error"]),
                reason=_optional_str(data["reason"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"callback request message is malformed: {exc!r}") from None


@dataclass(frozen=True, slots=True)
class CallbackDone:
    """A callback request has run (`error` says why it could not run, if it could not)."""

    id: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class XComEntry:
    """One stored XCom: its value is JSON text, decoded only where it is shown."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str
    value: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class ImportErrorRecord:
    """A DAG file that failed to parse, with the traceback its import raised."""

    id: int
    filename: str
    stacktrace: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class User:
    """A person who can sign in. The password hash never travels in this record."""

    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    active: bool
    roles: tuple[str, ...]
    created_on: datetime
    changed_on: datetime
    last_login: datetime | None
    login_count: int
    failed_login_count: int


@dataclass(frozen=True, slots=True)
class Role:
    """A named set of `(action, resource)` permission pairs. Built-in roles come from code and
    have no timestamps; custom ones live in the database."""

    name: str
    permissions: tuple[tuple[str, str], ...]  # sorted, no duplicates
    is_builtin: bool
    id: int | None = None
    created_on: datetime | None = None
    changed_on: datetime | None = None


@dataclass(frozen=True, slots=True)
class WebSession:
    """A web UI sign-in as stored: its user and its times. The session id itself (the cookie's
    value) is never stored, only its SHA-256."""

    id: int
    user: User
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RunBrief:
    """What a listing of DAGs shows of one of their recent runs (no conf: it may be large)."""

    dag_id: str
    run_id: str
    state: RunState
    run_type: RunType
    logical_date: datetime | None
    start_date: datetime | None
    end_date: datetime | None


@dataclass(frozen=True, slots=True)
class AssetRecord:
    """An asset (Airflow 2's dataset) with the DAGs scheduled on it and the tasks updating it."""

    id: int
    uri: str
    name: str
    group: str
    extra: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    consuming_dags: tuple[str, ...] = ()
    producing_tasks: tuple[tuple[str, str], ...] = ()  # (dag_id, task_id)


@dataclass(frozen=True, slots=True)
class AssetEventRecord:
    """One recorded update of an asset: by a task's success, or by hand (no source)."""

    id: int
    asset_id: int
    uri: str
    extra: Mapping[str, Any]
    source_dag_id: str | None
    source_task_id: str | None
    source_run_id: str | None
    source_map_index: int
    timestamp: datetime
    # (dag_id, run_id) of the runs that consumed the event.
    created_runs: tuple[tuple[str, str], ...] = ()

    def as_context(self) -> dict[str, Any]:
        """What a try's triggering_asset_events is built from (authoring/asset_events.py)."""
        return {
            "id": self.id,
            "uri": self.uri,
            "extra": dict(self.extra),
            "source_dag_id": self.source_dag_id,
            "source_task_id": self.source_task_id,
            "source_run_id": self.source_run_id,
            "source_map_index": self.source_map_index,
            "timestamp": self.timestamp,
        }
