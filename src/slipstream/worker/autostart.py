"""Starting a worker host beside a scheduler that found none: `slipstream worker --autostarted`
in a session of its own (a terminal's Ctrl-C or the scheduler's death does not reach it), its
output appended to the home's worker log. Settings reach it through the environment, as for
every Slipstream process: nothing secret is in its arguments."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path


class HostStarter:
    """Starts at most one host at a time and reaps it when it ends (a host it started is its
    child until this process exits)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> int:
        """Start a host unless the one started last still runs; returns its pid."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "slipstream.cli.main", "worker", "--autostarted"],
                env=os.environ.copy(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        return self._process.pid

    def exit_code(self) -> int | None:
        """How the host started last ended (None: still running, or none started)."""
        return self._process.poll() if self._process is not None else None

    def reap(self) -> None:
        if self._process is not None:
            self._process.poll()

    def wait(self, timeout: float) -> None:
        """Wait (at most `timeout`) for the host started last to exit, and reap it."""
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout)
