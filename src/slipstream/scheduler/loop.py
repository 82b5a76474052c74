"""The scheduler's loop: wait for something to happen, then run one pass. It decides nothing.

It sleeps in select() on every event source at once (executor pipes, the wake-up socket, DAG
file parsing, signals) with a timeout set by the next timed duty, so a finished task or a new
trigger is acted on within a pass, and an idle scheduler costs nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

from slipstream.clock import Clock
from slipstream.executors.base import Executor, ExecutorLoad, Measurable
from slipstream.scheduler.tick import Scheduler, TickReport
from slipstream.store.db import is_transient
from slipstream.wakeup import Hint, WakeupListener

log = logging.getLogger(__name__)


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
) -> None:
    """Serve until stopped. The scheduler must have been started; it is stopped on the way out."""
    stopper = stopper or Stopper()
    try:
        while not stopper.stopping:
            until_due = scheduler.seconds_until_due()
            due = clock.monotonic() + until_due
            timeout = _until_due([*sources, *hint_sources], clock.monotonic(), until_due)
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
            _step_sources(sources, readable, clock.monotonic())
            began = clock.monotonic()
            report = _guard(scheduler.tick, hints)
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


def serve_sources(sources: Sequence[LoopSource], *, clock: Clock, stopper: Stopper) -> None:
    """Serve loop sources alone (a DAG processor without a scheduler) until stopped."""
    while not stopper.stopping:
        timeout = _until_due(sources, clock.monotonic(), None)
        fds = [stopper.fileno(), *(fd for source in sources for fd in source.filenos())]
        readable, _, _ = select.select(fds, [], [], timeout)
        if stopper.fileno() in readable:
            stopper.drain()
        _step_sources(sources, readable, clock.monotonic())


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


def _step_sources(sources: Sequence[LoopSource], readable: Sequence[int], mono: float) -> None:
    """Step each source that is due or has a readable fd."""
    for source in sources:
        due = source.next_due()
        if (due is not None and due <= mono) or any(fd in readable for fd in source.filenos()):
            _guard(source.step, mono)


def _guard(step: object, arg: object) -> object:
    """One failed pass must not end the loop: log it with its traceback and carry on. Returns
    what the step returned, or None when it failed."""
    try:
        return step(arg)  # type: ignore[operator]
    except Exception as exc:
        if is_transient(exc):
            # PostgreSQL chose this pass as a deadlock victim against someone's change to
            # the same runs: nothing was kept, and the next pass does the work again.
            log.warning(
                "scheduler pass rolled back by the database (%s); retrying",
                getattr(exc, "orig", exc),
            )
            return None
        log.exception("scheduler pass failed; continuing")
        return None
