"""The worker's log server: a try's log, read over HTTP from the machine that runs it.

A worker on another machine writes its tries' logs to its own disk, as Airflow's do, and serves
them on `SLIPSTREAM_WORKER_LOG_SERVER_PORT` (8793, Airflow's `worker_log_server_port`), so the
API server and the UI read a remote try's log live. Only signed requests are answered: the API
signs each with a key derived from the install's web secret key (which every machine of an
install shares), for one path, valid for a short while. Nothing outside the log folder is served.

This module holds both ends of that contract: the server, and `sign`/`RemoteLog` for readers.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_PORT = 8793
# A signed request is good for this long: enough for clocks a little apart, too short to reuse.
SIGNATURE_SECONDS = 60
_PURPOSE = b"slipstream worker log server v1"
_PREFIX = "/log/"
SIZE_HEADER = "X-Log-Size"


def log_server_key(secret_key: bytes) -> bytes:
    """The key requests are signed with, derived from the install's web secret key so that the
    secret itself never travels or signs anything else."""
    return hmac.new(secret_key, _PURPOSE, hashlib.sha256).digest()


def sign(key: bytes, relative_path: str, expires: int) -> str:
    """The Authorization value for reading `relative_path` until `expires` (epoch seconds)."""
    message = f"{relative_path}\n{expires}".encode()
    return f"Signed {expires}.{hmac.new(key, message, hashlib.sha256).hexdigest()}"


def _verify(key: bytes, relative_path: str, header: str | None, now: float) -> str | None:
    """None if the request may be answered, else why not."""
    if not header or not header.startswith("Signed "):
        return "no signature"
    expires_text, _, signature = header[len("Signed ") :].partition(".")
    try:
        expires = int(expires_text)
    except ValueError:
        return "a malformed signature"
    expected = sign(key, relative_path, expires).rpartition(".")[2]
    if not hmac.compare_digest(signature, expected):
        return "a signature made with another key"
    if not now <= expires <= now + 2 * SIGNATURE_SECONDS:
        return "an expired signature"
    return None


class LogServer:
    """Serves `folder`'s files on `host:port` (0: any free port) from a daemon thread."""

    def __init__(self, folder: Path, key: bytes, *, host: str = "0.0.0.0", port: int = 0) -> None:
        self._folder = folder.resolve()
        self._key = key
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="log-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def _answer(
        self, raw_path: str, authorization: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        parsed = urllib.parse.urlsplit(raw_path)
        if not parsed.path.startswith(_PREFIX):
            return HTTPStatus.NOT_FOUND, {}, b"not found\n"
        relative = urllib.parse.unquote(parsed.path[len(_PREFIX) :])
        refused = _verify(self._key, relative, authorization, time.time())
        if refused is not None:
            return HTTPStatus.FORBIDDEN, {}, f"refused: {refused}\n".encode()
        target = (self._folder / relative).resolve()
        if not target.is_relative_to(self._folder) or relative.startswith("/"):
            return HTTPStatus.BAD_REQUEST, {}, b"a path outside the log folder\n"
        query = urllib.parse.parse_qs(parsed.query)
        try:
            offset = int(query.get("offset", ["0"])[0])
            limit = int(query["limit"][0]) if "limit" in query else None
        except ValueError:
            return HTTPStatus.BAD_REQUEST, {}, b"offset and limit must be whole numbers\n"
        if offset < 0 or (limit is not None and limit < 0):
            return HTTPStatus.BAD_REQUEST, {}, b"offset and limit must not be negative\n"
        try:
            with target.open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(offset)
                data = handle.read() if limit is None else handle.read(limit)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return HTTPStatus.NOT_FOUND, {}, b"no such log\n"
        return HTTPStatus.OK, {SIZE_HEADER: str(size)}, data


def _handler_for(server: LogServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "slipstream-log-server"

        def do_GET(self) -> None:
            status, headers, body = server._answer(self.path, self.headers.get("Authorization"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Each read of a live log is a request: keep them out of the worker's output.
            log.debug("log server: " + format, *args)

    return Handler


class RemoteLogError(Exception):
    """A remote log could not be read; the message says why, for the person reading it."""


@dataclass(frozen=True, slots=True)
class RemotePiece:
    data: bytes
    size: int  # the whole log's size on the worker, now


class RemoteLog:
    """Reads logs from workers' log servers (the API server's side)."""

    def __init__(
        self, key: Callable[[], bytes], *, port: int = DEFAULT_PORT, timeout: float = 5.0
    ) -> None:
        self._key_source = key  # read at the first remote read: most reads are local
        self._key: bytes | None = None
        self._port = port
        self._timeout = timeout

    def read(
        self, hostname: str, relative_path: str, *, offset: int = 0, limit: int | None = None
    ) -> RemotePiece | None:
        """A piece of the log from `offset`; None if the worker has no such log (yet)."""
        query = {"offset": str(offset)}
        if limit is not None:
            query["limit"] = str(limit)
        target = f"{_PREFIX}{urllib.parse.quote(relative_path)}?{urllib.parse.urlencode(query)}"
        expires = int(time.time()) + SIGNATURE_SECONDS
        key = self._key = self._key if self._key is not None else self._key_source()
        where = f"{hostname}:{self._port}"
        conn = http.client.HTTPConnection(hostname, self._port, timeout=self._timeout)
        try:
            conn.request(
                "GET", target, headers={"Authorization": sign(key, relative_path, expires)}
            )
            answer = conn.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteLogError(
                f"the log is on {hostname}, whose log server at {where} did not answer"
                f" ({exc or type(exc).__name__}); is its worker running?"
            ) from None
        finally:
            with contextlib.suppress(OSError):
                conn.close()
        if answer.status == HTTPStatus.NOT_FOUND:
            return None
        if answer.status == HTTPStatus.FORBIDDEN:
            raise RemoteLogError(
                f"the log server at {where} refused the request ({body.decode().strip()}):"
                " every machine of an install must share SLIPSTREAM_WEB_SECRET_KEY"
            )
        if answer.status != HTTPStatus.OK:
            raise RemoteLogError(
                f"the log server at {where} answered {answer.status}: {body.decode().strip()}"
            )
        size = int(answer.getheader(SIZE_HEADER) or offset + len(body))
        return RemotePiece(body, size)
