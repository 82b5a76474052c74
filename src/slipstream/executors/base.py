"""The Executor protocol: the whole contract between the scheduler and whatever runs tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from slipstream.core.records import (
    CallbackDone,
    CallbackRequest,
    TaskEvent,
    TaskKey,
    TaskStarted,
    Workload,
)


class Executor(Protocol):
    """Runs workloads and reports what happened to them.

    The scheduler never waits on an executor: it submits, then selects on `filenos()` next to
    its other event sources, and drains `events()` when woken.
    """

    @property
    def capacity(self) -> int:
        """How many tries may be in flight at once (queued or running) in this executor."""
        ...

    def start(self) -> None: ...

    def submit(self, workloads: Sequence[Workload]) -> None: ...

    def events(self) -> list[TaskEvent]:
        """Everything reported since the last call; never blocks."""
        ...

    def filenos(self) -> list[int]:
        """Descriptors that become readable when events may be waiting (empty: nothing to wait
        on, as for an inline executor whose events are ready as soon as `submit` returns)."""
        ...

    def shutdown(self, *, graceful: bool = True) -> None: ...


@runtime_checkable
class Killable(Protocol):
    """An executor that can stop tries in flight (not every one can: the inline executor runs
    a try to its end inside `submit`). A killed try still reports how it ended."""

    def kill(self, keys: Sequence[TaskKey]) -> None: ...


@runtime_checkable
class CallbackRunner(Protocol):
    """An executor that can run callback requests: user code, so never in the scheduler's
    process. A request changes no state; `callbacks_done()` says which have run (on the same
    wake-ups as `events()`)."""

    def run_callbacks(self, requests: Sequence[CallbackRequest]) -> None: ...

    def callbacks_done(self) -> list[CallbackDone]: ...


@dataclass(frozen=True, slots=True)
class ExecutorLoad:
    """What an executor holds at one moment, for metrics and health: tries handed to it that
    have not started yet (`queued`), tries running, and the processes running them."""

    capacity: int
    queued: int
    running: int
    worker_pids: tuple[int, ...] = ()


@runtime_checkable
class Measurable(Protocol):
    """An executor that can tell its load (the local executor; the inline one runs each try
    to its end inside `submit`, so it never holds any)."""

    def load(self) -> ExecutorLoad: ...


@runtime_checkable
class Acknowledging(Protocol):
    """An executor whose process keeps each outcome it reported until told it is applied (the
    worker host, which otherwise writes it to the outbox for the next scheduler). The
    scheduler calls `acknowledge()` right after the transaction that applied what `events()`
    and `callbacks_done()` handed out has committed: everything handed out so far is then
    applied."""

    def acknowledge(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Attachment:
    """What a worker host holds as a scheduler attaches to it: tries started (with their
    start), tries received and not started yet, and callback requests running. Outcomes it
    held for no scheduler are in the outbox by then, so anything else is not on that host."""

    host_job_id: int
    running: tuple[TaskStarted, ...]
    queued: tuple[TaskKey, ...]
    callbacks: tuple[int, ...]

    @property
    def held(self) -> set[TaskKey]:
        return {started.key for started in self.running} | set(self.queued)


@runtime_checkable
class Attaching(Protocol):
    """An executor whose tries run in a process that outlives the scheduler (the worker host).
    The scheduler attaches as it starts, before it recovers anything; detaches as it stops,
    leaving the tries running; and reconciles each attachment with the database in a pass."""

    def attach(self, scheduler_job_id: int) -> None:
        """Connect (starting a host if allowed) and wait for its answer; with no host to
        attach to, return detached (capacity 0) and keep trying from `events()`."""
        ...

    def take_attachment(self) -> Attachment | None:
        """The host's answer to the latest attach, once (None if nothing new)."""
        ...

    def detach(self) -> None:
        """The scheduler stops on purpose: the host keeps its tries for the next one."""
        ...

    def wake_in(self) -> float | None:
        """Seconds until the executor wants to be polled again (a retry to connect)."""
        ...


@runtime_checkable
class Publishing(Protocol):
    """An executor that publishes tries for remote workers to claim (Celery): their outcomes
    come through the outbox, a dead worker's tries are found by its job, and a try nobody
    claimed is published again (a broker that lost it) or fails after the queued timeout."""

    @property
    def republish_after(self) -> float: ...

    @property
    def queued_timeout(self) -> float: ...

    def published_at(self) -> dict[TaskKey, datetime]:
        """When each try's message last went out."""
        ...

    def forget(self, keys: Sequence[TaskKey]) -> None:
        """These tries are claimed or over."""
        ...
