"""Ending a test home's worker host: a scheduler stopped on purpose leaves its autostarted host
running the tries it still holds (it exits once they end), and a killed one leaves it waiting
for the next scheduler. A test's teardown ends it, so nothing outlives the test."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from slipstream.lifeline import is_alive
from slipstream.worker.lock import holder_pid


def end_worker_host(lock_path: Path, timeout: float = 15.0) -> None:
    """SIGTERM the host holding `lock_path` (it kills its tries and records them), then
    SIGKILL it if it is still there after `timeout`."""
    pid = holder_pid(lock_path)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if is_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
