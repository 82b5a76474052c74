"""The local executor's wire: framed messages over a non-blocking socket, and what they say.

Neither end may ever block on the other, so sends go to an outbox that is flushed whenever the
socket is writable; a slow or stuck peer costs memory, never a deadlock.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from slipstream.authoring.secrets import SecretsBackendFactory
from slipstream.config import SmtpSettings
from slipstream.core.records import CallbackRequest, TaskKey, Workload
from slipstream.runner.alerts import DEFAULT_CALLBACK_TIMEOUT
from slipstream.runner.dag_sources import DagSourceReaderFactory
from slipstream.runner.frames import FrameDecoder, encode_frame
from slipstream.runner.runtime import XComReaderFactory

_RECV_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class RunTry:
    """Executor -> worker: start this try."""

    workload: Workload


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Executor -> worker, first and once: how to behave. It travels over the socket so that
    nothing (a database URL with a password, say) appears in the worker's command line."""

    xcom_reader_factory: XComReaderFactory | None
    kill_grace_seconds: float
    dag_import_timeout: float
    parent_pid: int  # the executor's process: the worker must not outlive it
    smtp: SmtpSettings | None = None  # for email_on_failure / email_on_retry
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT  # SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS
    # Stored Variables and Connections (a picklable recipe holding the database URL and the
    # Fernet keys: never in a process argument).
    secrets: SecretsBackendFactory | None = None
    # Reads a DAG version's text when this worker's copy of the file is missing or another
    # version (None: the worker imports what file it has).
    dag_source_reader: DagSourceReaderFactory | None = None
    # Put on sys.path, as the parser does: DAG files import helper modules beside them.
    dag_folders: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunCallbacks:
    """Executor -> worker: run this callback request in a forked child; the worker answers
    with a CallbackDone once the child has exited."""

    request: CallbackRequest


@dataclass(frozen=True, slots=True)
class StopTry:
    """Executor -> worker: a person marked or cleared this try's task; end the try (it still
    reports how it ended, as killed)."""

    key: TaskKey


@dataclass(frozen=True, slots=True)
class Drain:
    """Executor -> worker: take no more work; exit once the running tries have finished."""


class Channel:
    """One end of a socketpair carrying framed messages."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._decoder = FrameDecoder()
        self._outbox = bytearray()
        self._can_send = True
        self.at_eof = False  # nothing more will arrive: the peer closed its end, or vanished

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def wants_write(self) -> bool:
        return bool(self._outbox)

    def send(self, message: object) -> None:
        if self._can_send:
            self._outbox += encode_frame(message)
            self.flush()

    def send_all(self, messages: list[object]) -> None:
        """Several messages in one write: the peer wakes once for all of them."""
        if self._can_send and messages:
            for message in messages:
                self._outbox += encode_frame(message)
            self.flush()

    def flush(self) -> bool:
        """Send what the socket takes now; True when nothing is left waiting."""
        while self._outbox:
            try:
                sent = self.sock.send(self._outbox)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:  # EPIPE, ECONNRESET: nobody will read this any more
                self._outbox.clear()
                self._can_send = False
                break
            del self._outbox[:sent]
        return True

    def receive(self) -> list[object]:
        """Every whole message that has arrived, without blocking."""
        messages: list[object] = []
        while not self.at_eof:
            try:
                data = self.sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self.at_eof = True
                break
            messages.extend(self._decoder.feed(data))
        return messages

    def send_remaining(self, timeout: float) -> None:
        """Last words before exiting: block (at most `timeout`) until the outbox is out."""
        if not self.wants_write:
            return
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(self._outbox)
        except OSError:
            pass
        finally:
            self._outbox.clear()

    def close(self) -> None:
        self.sock.close()
