"""Use cases that name a DAG written a moment ago: parse the DAG folders once, then retry.

The CLI and the API share this, so a new DAG file works at once without waiting for the
scheduler's next look at the folders.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from slipstream.errors import DagNotFound

T = TypeVar("T")


class FreshDags:
    """Runs an action; on DagNotFound parses the DAG folders (via `sync`) and retries once."""

    def __init__(self, sync: Callable[[], object]) -> None:
        self._sync = sync
        # One parse at a time per process: concurrent requests for a new DAG share its result.
        self._lock = threading.Lock()

    def sync(self) -> None:
        """Parse the DAG folders now."""
        with self._lock:
            self._sync()

    def __call__(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except DagNotFound:
            self.sync()
            return action()
