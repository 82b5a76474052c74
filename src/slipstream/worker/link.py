"""The scheduler-host link: what a scheduler and its worker host say to each other over the
host's Unix stream socket, framed as the pool's own wire is (`executors.wire.Channel`).

A scheduler sends `Attach` first, then `RunTry`, `StopTry` and `RunCallbacks` (the pool's own
messages), `Applied` after each commit, and `Detach` when it stops on purpose. The host answers
`Attached` or `Refused`, then forwards its pool's events, each numbered (`Forwarded`), and keeps
every outcome until an `Applied` covers its number.
"""

from __future__ import annotations

from dataclasses import dataclass

from slipstream.core.records import CallbackDone, TaskFinished, TaskKey, TaskStarted

# Both ends must speak the same messages (they are pickled): a host refuses another version.
WIRE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Attach:
    """Scheduler -> host, first and once: this scheduler's job, and the wire it speaks."""

    scheduler_job_id: int
    wire_version: int = WIRE_VERSION


@dataclass(frozen=True, slots=True)
class Attached:
    """Host -> scheduler: attached. What the host holds now; every outcome it held for no
    scheduler is committed to the outbox before this is sent. `seq` is the number of the last
    event it forwarded before (the next one is `seq + 1`)."""

    host_job_id: int
    capacity: int
    running: tuple[TaskStarted, ...]
    queued: tuple[TaskKey, ...]
    callbacks: tuple[int, ...]
    worker_pids: tuple[int, ...]
    seq: int


@dataclass(frozen=True, slots=True)
class Refused:
    """Host -> scheduler: not attached, and why (another scheduler is attached; another wire
    version); the host closes the connection after it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Forwarded:
    """Host -> scheduler: one of the pool's events, numbered in the order the host sent them."""

    seq: int
    event: TaskStarted | TaskFinished | CallbackDone


@dataclass(frozen=True, slots=True)
class PoolWorkers:
    """Host -> scheduler: the pool's worker processes changed (one died and was replaced)."""

    pids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Applied:
    """Scheduler -> host: every event numbered up to `up_to_seq` is applied and committed; the
    host may forget those outcomes."""

    up_to_seq: int


@dataclass(frozen=True, slots=True)
class Detach:
    """Scheduler -> host: this scheduler stops on purpose. The host keeps running its tries and
    writes their outcomes to the outbox for the next scheduler."""
