"""Waiting on an executor the way the scheduler does: select on its descriptors, then drain."""

from __future__ import annotations

import select
import time
from collections.abc import Iterable
from typing import TypeVar

from slipstream.core.records import TaskEvent, TaskFinished, TaskKey, TaskStarted
from slipstream.executors.base import Executor

_E = TypeVar("_E", TaskStarted, TaskFinished)


def wait_for_finished(
    executor: Executor,
    keys: Iterable[TaskKey],
    timeout: float = 10.0,
    *,
    seen: list[TaskEvent] | None = None,
) -> dict[TaskKey, TaskFinished]:
    """Drain events until each key has finished; the TaskFinished of each."""
    return _wait_for(TaskFinished, executor, keys, timeout, seen)


def wait_for_started(
    executor: Executor, keys: Iterable[TaskKey], timeout: float = 10.0
) -> dict[TaskKey, TaskStarted]:
    return _wait_for(TaskStarted, executor, keys, timeout, None)


def _wait_for(
    kind: type[_E],
    executor: Executor,
    keys: Iterable[TaskKey],
    timeout: float,
    seen: list[TaskEvent] | None,
) -> dict[TaskKey, _E]:
    wanted = set(keys)
    found: dict[TaskKey, _E] = {}
    deadline = time.monotonic() + timeout
    while True:
        for event in executor.events():
            if seen is not None:
                seen.append(event)
            if isinstance(event, kind) and event.key in wanted:
                found[event.key] = event
        if not wanted - found.keys():
            return found
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            missing = sorted(wanted - found.keys())
            raise AssertionError(f"timed out after {timeout}s; no {kind.__name__} for {missing}")
        select.select(executor.filenos(), [], [], remaining)
