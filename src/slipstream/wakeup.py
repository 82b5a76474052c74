"""Cross-process wake-ups: a datagram socket the scheduler listens on and anyone may poke.

A trigger committed by the CLI or the API must reach the scheduler at once rather than after a
polling interval. A Unix datagram is the cheapest reliable-enough signal on one machine: sending
never blocks, and a lost datagram only costs the scheduler's periodic safety scan.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

_MAX_DATAGRAM = 4096


class WakeupSender:
    """Sends hints ("run:<dag_id>", "dag:<dag_id>") to a listening scheduler, if there is one."""

    def __init__(self, path: Path) -> None:
        self._path = str(path)
        self._sock: socket.socket | None = None

    def notify(self, hint: str = "") -> None:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        # Nobody listening, or the listener's buffer is full: the safety scan will catch up.
        with contextlib.suppress(OSError):
            self._sock.sendto(hint.encode()[:_MAX_DATAGRAM], self._path)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class WakeupListener:
    """The receiving end; `fileno()` goes into the scheduler's selector."""

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def drain(self) -> list[str]:
        hints: list[str] = []
        while True:
            try:
                data = self._sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return hints
            hints.append(data.decode(errors="replace"))

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
