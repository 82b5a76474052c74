"""The Executor protocol: the whole contract between the scheduler and whatever runs tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from slipstream.core.records import CallbackDone, CallbackRequest, TaskEvent, TaskKey, Workload


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
