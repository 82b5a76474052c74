"""The worker host's listening socket: a Unix stream socket in the home (mode 0600), where a
scheduler connects to attach. Frames on it are pickles, so a peer of another uid is refused
by its credentials (SO_PEERCRED) before a byte of it is read."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int


def peer_of(sock: socket.socket) -> Peer:
    """Who is at the other end of a connected Unix socket, as the kernel saw it connect."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    pid, uid, _gid = _CREDENTIALS.unpack(raw)
    return Peer(pid, uid)


class Intake:
    """Bound and listening from construction; `close()` removes the socket file. Only the
    holder of the home's worker lock may make one (it removes a dead host's stale file)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a dead host's: we hold the lock, so no live host uses it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Created 0600 (no window in which another user could connect), and checked per peer.
        previous = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(previous)
        sock.listen(16)
        sock.setblocking(False)
        self.path = path
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def accept(self) -> tuple[socket.socket, Peer] | None:
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            return None
        return conn, peer_of(conn)

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
