"""One worker host per home: an flock on `$SLIPSTREAM_HOME/worker.lock`, which also names the
holder's pid, so a second host (or a bench tearing down) can say which process holds it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class HostAlreadyRunning(Exception):
    """Another live process holds this home's worker lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "a process that did not write its pid"
        super().__init__(
            f"another worker host is running for this home ({who}, holding {path}); stop it"
            " first, or let the scheduler use it"
        )
        self.pid = pid


class HostLock:
    """Held for the host's whole life; the kernel releases it however the process ends."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Close-on-exec: the pool's workers (and their tries) must not hold it after we die.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise HostAlreadyRunning(path, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.path = path
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = -1


def holder_pid(path: Path) -> int | None:
    """The pid of the live host holding `path`'s lock, or None when nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
