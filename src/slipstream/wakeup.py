"""Cross-process wake-ups: a datagram socket the scheduler listens on and anyone may poke, and
the typed hints it carries (built and read here only).

A trigger committed by the CLI or the API must reach the scheduler at once rather than after a
polling interval. A Unix datagram is the cheapest reliable-enough signal on one machine: sending
never blocks, and a lost datagram only costs the scheduler's periodic safety scan.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

_MAX_DATAGRAM = 4096


class HintKind(StrEnum):
    """What changed; on the wire, the datagram's first byte (the key follows it). Capitals,
    so that the older "run:<dag>" form reads as unknown (look everywhere), not as a DAG id."""

    QUEUED_RUN = "Q"  # key: a DAG that has a new queued run
    DAG_CHANGED = "D"  # key: a DAG parsed, paused or unpaused; empty: every DAG
    RUN_CHANGED = "R"  # key: the primary key of a run a person changed (marked, cleared...)
    POOLS_CHANGED = "P"  # a pool was created, resized or deleted: read the pools again
    ASSET_EVENT = "A"  # an asset event was recorded outside the scheduler (API, CLI)
    ANYTHING = "*"  # look at everything; also what a datagram we cannot read means


@dataclass(frozen=True, slots=True)
class Hint:
    kind: HintKind
    key: str = ""

    @classmethod
    def queued_run(cls, dag_id: str) -> Hint:
        return cls(HintKind.QUEUED_RUN, dag_id)

    @classmethod
    def dag_changed(cls, dag_id: str = "") -> Hint:
        return cls(HintKind.DAG_CHANGED, dag_id)

    @classmethod
    def run_changed(cls, run_pk: int) -> Hint:
        return cls(HintKind.RUN_CHANGED, str(run_pk))

    @classmethod
    def pools_changed(cls) -> Hint:
        return cls(HintKind.POOLS_CHANGED)

    @classmethod
    def asset_event(cls) -> Hint:
        return cls(HintKind.ASSET_EVENT)

    @classmethod
    def anything(cls) -> Hint:
        return cls(HintKind.ANYTHING)

    @property
    def run_pk(self) -> int:
        """The run a RUN_CHANGED hint names (decode() lets only digits through)."""
        return int(self.key)

    def encode(self) -> bytes:
        return (self.kind.value + self.key).encode()[:_MAX_DATAGRAM]

    @classmethod
    def decode(cls, data: bytes) -> Hint:
        """A hint from a datagram; anything unreadable asks the scheduler to look everywhere,
        which costs a scan but never misses work."""
        text = data.decode(errors="replace")
        try:
            kind = HintKind(text[:1])
        except ValueError:
            return cls.anything()
        key = text[1:]
        if kind is HintKind.RUN_CHANGED and not (key.isascii() and key.isdigit()):
            return cls.anything()
        return cls(kind, key)


class HintSender(Protocol):
    """Anything that delivers hints to schedulers: the datagram below on one machine, or
    PostgreSQL's NOTIFY (store/notify.py) across machines. Sending never raises: a lost hint
    only costs the scheduler's safety scan."""

    def notify(self, hint: Hint) -> None: ...

    def close(self) -> None: ...


class WakeupSender:
    """Sends hints to a listening scheduler on this machine, if there is one."""

    def __init__(self, path: Path) -> None:
        self._path = str(path)
        self._sock: socket.socket | None = None

    def notify(self, hint: Hint) -> None:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        # Nobody listening, or the listener's buffer is full: the safety scan will catch up.
        with contextlib.suppress(OSError):
            self._sock.sendto(hint.encode(), self._path)

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

    def filenos(self) -> list[int]:
        return [self._sock.fileno()]

    def next_due(self) -> float | None:
        """Never wants draining unless readable (see HintSource in the scheduler's loop)."""
        return None

    def drain(self) -> list[Hint]:
        hints: list[Hint] = []
        while True:
            try:
                data = self._sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return hints
            hints.append(Hint.decode(data))

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
