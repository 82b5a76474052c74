"""The scheduler's loop: wait for something to happen, then run one pass. It decides nothing.

It sleeps in select() on every event source at once (executor pipes, the wake-up socket, DAG
file parsing, signals) with a timeout set by the next timed duty, so a finished task or a new
trigger is acted on within a pass, and an idle scheduler costs nothing. A failed pass never
ends it (PassGuard); while the database cannot be reached it tries a pass a second.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol, TypeVar

from slipstream.clock import Clock
from slipstream.errors import DatabaseUnavailable
from slipstream.executors.base import Executor, ExecutorLoad, Measurable
from slipstream.scheduler.tick import Scheduler, TickReport
from slipstream.store.db import is_transient
from slipstream.wakeup import Hint, WakeupListener

log = logging.getLogger(__name__)

T = TypeVar("T")

# While the database cannot be reached, the least wait between two passes: connections refused
# at once must not turn the loop into a spin.
OUTAGE_PAUSE_SECONDS = 1.0


class LoopSource(Protocol):
    """Anything else the loop should serve between passes (the DAG file processor)."""

    def filenos(self) -> list[int]: ...

    def next_due(self) -> float | None:
        """Monotonic time at which `step` wants to run, or None."""
        ...

    def step(self, now: float) -> None: ...


class HintSource(Protocol):
    """Another way hints arrive besides the wake-up socket (PostgreSQL's LISTEN)."""

    def filenos(self) -> list[int]: ...

    def next_due(self) -> float | None:
        """Monotonic time at which `drain` wants calling even if nothing is readable (to
        reconnect, say), or None."""
        ...

    def drain(self) -> list[Hint]: ...


@dataclass(frozen=True, slots=True)
class PassSample:
    """One pass as the loop saw it. `lag_seconds`: how late the pass began after it was due
    (the scheduler's own due time, or the moment select() returned with something to read,
    whichever came first): a timer that fired late, or DAG parsing served first. `report` is
    None when the pass failed."""

    seconds: float
    lag_seconds: float
    report: TickReport | None
    in_flight: int
    load: ExecutorLoad | None


class PassObserver(Protocol):
    """Told about every pass (the scheduler's metrics); called on the loop's own thread."""

    def pass_done(self, sample: PassSample) -> None: ...


class Stopper:
    """Turns SIGTERM/SIGINT into a flag plus a wake-up, so the loop ends between passes."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self.stopping = False
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping = True
        with contextlib.suppress(BlockingIOError):
            os.write(self._write, b"x")

    def fileno(self) -> int:
        return self._read

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._read, 4096)

    def close(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        os.close(self._read)
        os.close(self._write)


class PassGuard:
    """Runs the loop's steps (a pass, a source's step) so that a failure never ends the loop,
    and says what failed: a bug with its traceback; a deadlock victim in one line; a database
    that cannot be reached in one warning when that begins and one when it answers again,
    not a traceback a pass. `probe` (Database.ping) confirms it answers before the outage is
    called over, since a step can succeed without touching the database."""

    def __init__(self, clock: Clock, *, probe: Callable[[], None] | None = None) -> None:
        self._clock = clock
        self._probe = probe
        self._unreachable_since: float | None = None
        self._last_failure = 0.0

    def wait_at_least(self, timeout: float | None) -> float | None:
        """`timeout` for select(), lengthened while the database is unreachable so that
        passes come OUTAGE_PAUSE_SECONDS apart (a wake-up still ends the wait sooner)."""
        if self._unreachable_since is None or timeout is None:
            return timeout
        pause = self._last_failure + OUTAGE_PAUSE_SECONDS - self._clock.monotonic()
        return max(timeout, pause)

    def run(self, step: Callable[[Any], T], arg: object) -> T | None:
        """What `step(arg)` returned, or None when it failed."""
        try:
            result = step(arg)
        except Exception as exc:
            self._failed(exc)
            return None
        if self._unreachable_since is not None:
            self._check_recovered()
        return result

    def _failed(self, exc: Exception) -> None:
        now = self._clock.monotonic()
        self._last_failure = now
        if isinstance(exc, DatabaseUnavailable):
            if self._unreachable_since is None:
                self._unreachable_since = now
                log.warning(
                    "the metadata database cannot be reached (%s); trying again every %g s,"
                    " and saying so when it answers",
                    exc,
                    OUTAGE_PAUSE_SECONDS,
                )
            return
        if is_transient(exc):
            # PostgreSQL chose this pass as a deadlock victim against someone's change to
            # the same runs: nothing was kept, and the next pass does the work again.
            log.warning(
                "scheduler pass rolled back by the database (%s); retrying",
                getattr(exc, "orig", exc),
            )
            return
        log.exception("scheduler pass failed; continuing")

    def _check_recovered(self) -> None:
        if self._probe is not None:
            try:
                self._probe()
            except DatabaseUnavailable:
                self._last_failure = self._clock.monotonic()
                return
        assert self._unreachable_since is not None
        lasted = self._clock.monotonic() - self._unreachable_since
        self._unreachable_since = None
        log.warning(
            "the metadata database answers again, after %.1f s unreachable; carrying on", lasted
        )


def run_forever(
    scheduler: Scheduler,
    executor: Executor,
    *,
    clock: Clock,
    listener: WakeupListener | None = None,
    sources: Sequence[LoopSource] = (),
    stopper: Stopper | None = None,
    observer: PassObserver | None = None,
    hint_sources: Sequence[HintSource] = (),
    probe: Callable[[], None] | None = None,
) -> None:
    """Serve until stopped. The scheduler must have been started; it is stopped on the way out.
    `probe` checks that the database answers (see PassGuard)."""
    stopper = stopper or Stopper()
    guard = PassGuard(clock, probe=probe)
    try:
        while not stopper.stopping:
            until_due = scheduler.seconds_until_due()
            due = clock.monotonic() + until_due
            timeout = guard.wait_at_least(
                _until_due([*sources, *hint_sources], clock.monotonic(), until_due)
            )
            fds: list[int] = [stopper.fileno(), *executor.filenos()]
            if listener is not None:
                fds.append(listener.fileno())
            fds += (fd for source in sources for fd in source.filenos())
            fds += (fd for source in hint_sources for fd in source.filenos())
            readable, _, _ = select.select(fds, [], [], timeout)
            if readable:
                due = min(due, clock.monotonic())
            if stopper.fileno() in readable:
                stopper.drain()
            hints = (
                listener.drain() if listener is not None and listener.fileno() in readable else []
            )
            hints += _drain_hints(hint_sources, readable, clock.monotonic())
            _step_sources(sources, readable, clock.monotonic(), guard)
            began = clock.monotonic()
            report = guard.run(scheduler.tick, hints)
            if observer is not None:
                _observe(observer, scheduler, executor, report, began, due, clock.monotonic())
    finally:
        scheduler.stop()


def _observe(
    observer: PassObserver,
    scheduler: Scheduler,
    executor: Executor,
    report: object,
    began: float,
    due: float,
    ended: float,
) -> None:
    sample = PassSample(
        seconds=ended - began,
        lag_seconds=max(0.0, began - due),
        report=report if isinstance(report, TickReport) else None,
        in_flight=scheduler.in_flight,
        load=executor.load() if isinstance(executor, Measurable) else None,
    )
    try:
        observer.pass_done(sample)
    except Exception:
        # Metrics must never stop scheduling.
        log.exception("recording the scheduler's metrics failed; continuing")


def serve_sources(
    sources: Sequence[LoopSource],
    *,
    clock: Clock,
    stopper: Stopper,
    probe: Callable[[], None] | None = None,
) -> None:
    """Serve loop sources alone (a DAG processor without a scheduler) until stopped."""
    guard = PassGuard(clock, probe=probe)
    while not stopper.stopping:
        timeout = guard.wait_at_least(_until_due(sources, clock.monotonic(), None))
        fds = [stopper.fileno(), *(fd for source in sources for fd in source.filenos())]
        readable, _, _ = select.select(fds, [], [], timeout)
        if stopper.fileno() in readable:
            stopper.drain()
        _step_sources(sources, readable, clock.monotonic(), guard)


def _drain_hints(
    hint_sources: Sequence[HintSource], readable: Sequence[int], mono: float
) -> list[Hint]:
    hints: list[Hint] = []
    for source in hint_sources:
        due = source.next_due()
        if (due is not None and due <= mono) or any(fd in readable for fd in source.filenos()):
            try:
                hints += source.drain()
            except Exception:
                # A hint source must never stop scheduling; look everywhere instead.
                log.exception("reading hints failed; continuing")
                hints.append(Hint.anything())
    return hints


class _Due(Protocol):
    def next_due(self) -> float | None: ...


def _until_due(sources: Sequence[_Due], mono: float, timeout: float | None) -> float | None:
    """How long to wait in select(): `timeout` (None: for ever), shortened by any source due."""
    for source in sources:
        due = source.next_due()
        if due is not None:
            wait = max(0.0, due - mono)
            timeout = wait if timeout is None else min(timeout, wait)
    return timeout


def _step_sources(
    sources: Sequence[LoopSource], readable: Sequence[int], mono: float, guard: PassGuard
) -> None:
    """Step each source that is due or has a readable fd."""
    for source in sources:
        due = source.next_due()
        if (due is not None and due <= mono) or any(fd in readable for fd in source.filenos()):
            guard.run(source.step, mono)
