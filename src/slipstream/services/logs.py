"""Task logs: where each try's log lives, reading it whole or from an offset (from this
machine's log folder, or from the log server of the worker that ran the try), and the signed
continuation tokens that let a client read a running try's log a piece at a time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from slipstream.core.log_paths import log_path_for
from slipstream.errors import InvalidInputError, SlipstreamError, TaskInstanceNotFound
from slipstream.executors.log_server import RemoteLog, RemoteLogError, RemotePiece
from slipstream.keyfile import load_or_create_key

BAD_TOKEN = "Bad Signature. Please use only the tokens provided by the API."

# The signing key lives beside the logs so every API worker process (and a restarted server)
# accepts the tokens any of them handed out; it is made once, readable by its owner only.
_KEY_FILE = ".continuation-token-key"


@dataclass(frozen=True, slots=True)
class LogChunk:
    text: str
    offset: int  # where the next read should start


# (dag_id, run_id, task_id, try_number, map_index) -> the hostname the try ran on, if known.
TryLocator = Callable[[str, str, str, int, int], str | None]


@dataclass(frozen=True, slots=True)
class RemoteLogs:
    """How to read the logs of tries that ran on another machine: ask where the try ran, then
    that machine's worker log server."""

    reader: RemoteLog
    locate: TryLocator
    local_hostname: str


class LogService:
    def __init__(self, log_folder: Path, *, remote: RemoteLogs | None = None) -> None:
        self._folder = log_folder
        self._remote = remote
        self._key: bytes | None = None
        self._key_lock = threading.Lock()

    def path(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> Path:
        return log_path_for(self._folder, dag_id, run_id, task_id, try_number, map_index)

    def read(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        *,
        offset: int = 0,
        map_index: int = -1,
        limit: int | None = None,
    ) -> LogChunk:
        """The log from `offset` on (at most `limit` bytes of it). A try that ran on another
        machine is read from that machine's log server; if it cannot be, the chunk says why
        (and its offset stays, so the next read tries again)."""
        path = self.path(dag_id, run_id, task_id, try_number, map_index)
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read() if limit is None else handle.read(limit)
        except FileNotFoundError:
            try:
                piece = self._remote_piece(path, dag_id, run_id, task_id, try_number, map_index,
                                           offset=offset, limit=limit)  # fmt: skip
            except RemoteLogError as exc:
                return LogChunk(f"*** {exc} ***\n", offset)
            if piece is None:
                raise TaskInstanceNotFound(
                    dag_id, run_id, task_id, try_number, map_index=map_index
                ) from None
            data = piece.data
        # Stop at the last complete UTF-8 character: the rest comes with the next read.
        end = _complete_utf8(data)
        return LogChunk(data[:end].decode(errors="replace"), offset + end)

    def size(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> int | None:
        """The log's size in bytes so far; None while it does not exist (a queued try), or
        while the worker holding it cannot be asked."""
        path = self.path(dag_id, run_id, task_id, try_number, map_index)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            pass
        try:
            piece = self._remote_piece(
                path, dag_id, run_id, task_id, try_number, map_index, offset=0, limit=0
            )
        except RemoteLogError:
            return None
        return None if piece is None else piece.size

    def _remote_piece(
        self,
        path: Path,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        map_index: int,
        *,
        offset: int,
        limit: int | None,
    ) -> RemotePiece | None:
        """The piece from the log server of the machine the try ran on; None when it ran here
        (or nowhere yet), or that machine has no such log."""
        remote = self._remote
        if remote is None:
            return None
        try:
            host = remote.locate(dag_id, run_id, task_id, try_number, map_index)
        except SlipstreamError:  # the run or task is gone
            return None
        if host is None or host == remote.local_hostname:
            return None
        relative = path.relative_to(self._folder).as_posix()
        return remote.reader.read(host, relative, offset=offset, limit=limit)

    # ----------------------------------------------------------------- continuation tokens

    def token(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        offset: int,
        map_index: int = -1,
    ) -> str:
        """An opaque token for reading this try's log on from `offset`."""
        names = _names(dag_id, run_id, task_id, try_number, map_index)
        payload = json.dumps({"o": offset, "t": names}, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._sign(body)}"

    def offset_of(
        self,
        token: str,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        map_index: int = -1,
    ) -> int:
        """The offset a token holds; 400 in Airflow's words if it was altered, or made for
        another try's log."""
        body, _, signature = token.partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            raise InvalidInputError(BAD_TOKEN, field="token")
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            offset = int(payload["o"])
            names = payload["t"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise InvalidInputError(BAD_TOKEN, field="token") from None
        if names != _names(dag_id, run_id, task_id, try_number, map_index) or offset < 0:
            raise InvalidInputError(BAD_TOKEN, field="token")
        return offset

    def _sign(self, body: str) -> str:
        return hmac.new(self._signing_key(), body.encode(), hashlib.sha256).hexdigest()[:32]

    def _signing_key(self) -> bytes:
        with self._key_lock:
            if self._key is None:
                self._key = load_or_create_key(self._folder / _KEY_FILE)
            return self._key


def _names(
    dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int
) -> list[str | int]:
    """What a token is made for: a try's log (of one map index, for a mapped task)."""
    names: list[str | int] = [dag_id, run_id, task_id, try_number]
    return [*names, map_index] if map_index >= 0 else names


def _complete_utf8(data: bytes) -> int:
    """The length of `data` without a trailing, incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # the start of a sequence (or plain ASCII)
            needed = (
                1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            )
            return len(data) if back >= needed else len(data) - back
    return len(data)
