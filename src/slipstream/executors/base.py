"""The Executor protocol: the whole contract between the scheduler and whatever runs tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from slipstream.core.records import TaskEvent, Workload


class Executor(Protocol):
    """Runs workloads and reports what happened to them.

    The scheduler never waits on an executor: it submits, then selects on `fileno()` (when not
    None) next to its other event sources, and drains `events()` when woken.
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

    def fileno(self) -> int | None:
        """A descriptor that becomes readable when events may be waiting, or None to poll."""
        ...

    def shutdown(self, *, graceful: bool = True) -> None: ...
