"""CLI use cases that name a DAG written a moment ago: wait for the DAG processor to parse it, or,
when no processor is running, parse the DAG folders (each file in its own child) and retry.

The API server never does either: it answers from the database alone, so no request can make it
run DAG code or wait on a slow file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from slipstream.errors import DagNotFound

T = TypeVar("T")

# How often to look again while waiting for the processor: a parse takes tens of milliseconds.
_POLL_SECONDS = 0.05


class FreshDags:
    """Runs an action; on DagNotFound waits for a running DAG processor (up to `wait_seconds`,
    telling `on_wait` once), or, with none running, parses the folders via `sync`, then retries."""

    def __init__(
        self,
        *,
        sync: Callable[[], object],
        processor_running: Callable[[], bool],
        wait_seconds: float,
        on_wait: Callable[[str, float], None] = lambda dag_id, seconds: None,
    ) -> None:
        self._sync = sync
        self._processor_running = processor_running
        self._wait_seconds = wait_seconds
        self._on_wait = on_wait

    def sync(self) -> None:
        """Bring the database up to date with the DAG files: nothing to do while a processor
        runs (it watches the folders); otherwise parse them now."""
        if not self._processor_running():
            self._sync()

    def __call__(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except DagNotFound as missing:
            if not self._processor_running():
                self._sync()
                return action()
            self._on_wait(missing.dag_id, self._wait_seconds)
            deadline = time.monotonic() + self._wait_seconds
            while time.monotonic() < deadline:
                time.sleep(_POLL_SECONDS)
                try:
                    return action()
                except DagNotFound:
                    continue
            raise
