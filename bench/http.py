"""The bench's HTTP side: a keep-alive client for Slipstream's REST API, sign-in (HTTP Basic or
a bearer token from POST /auth/token), and client processes that trigger runs in parallel.

The client speaks HTTP/1.1 on one persistent plain socket, as light as a Python client gets,
so what is measured is the server. Parallel clients are separate processes (spawned, so they share
nothing with the bench) released together by one event.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TRIGGER_PATH = "/api/v1/dags/{dag_id}/dagRuns"


@dataclass(frozen=True, slots=True)
class TriggerRequest:
    """What one trigger is, on the wire: Slipstream's by default; peers give their own (Airflow
    3's /api/v2 path and body, Prefect's create_flow_run)."""

    path: str  # the POST path, the DAG already filled in
    body: Any  # JSON-encodable
    run_id_field: str  # where the answer names the new run
    warm_path: str  # a cheap GET each client sends first, to open and warm its connection

    @classmethod
    def slipstream(cls, dag_id: str) -> TriggerRequest:
        return cls(TRIGGER_PATH.format(dag_id=dag_id), {"conf": {}}, "dag_run_id", "/api/v1/health")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a client sends: `Basic ...` or `Bearer ...`."""

    kind: str  # "basic" or "token"
    header: str

    @classmethod
    def basic(cls, username: str, password: str) -> Credentials:
        encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
        return cls("basic", f"Basic {encoded}")

    @classmethod
    def bearer(cls, token: str) -> Credentials:
        return cls("token", f"Bearer {token}")


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    ms: float  # from sending the request to having read the whole answer

    def json(self) -> Any:
        return json.loads(self.body)


class ApiClient:
    """One keep-alive HTTP/1.1 connection to the API server, on a plain socket: the client
    costs a few tens of microseconds per request (http.client costs several times that), so
    the figures are the server's. It understands exactly what Slipstream's server sends back:
    a status line, headers and a Content-Length body."""

    def __init__(self, port: int, credentials: Credentials | None = None) -> None:
        self._port = port
        self._credentials = credentials
        self._sock: socket.socket | None = None
        self._buffer = b""

    def _connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection(("127.0.0.1", self._port), timeout=120)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buffer = b""
        return self._sock

    def _encode(self, method: str, path: str, body: Any) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: application/json"]
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(payload)}")
        if self._credentials is not None:
            lines.append(f"Authorization: {self._credentials.header}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload

    def _read_answer(self, sock: socket.socket) -> tuple[int, bytes, bool]:
        while b"\r\n\r\n" not in self._buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buffer += chunk
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        close = False
        for line in header_lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding":
                raise RuntimeError("the bench client does not read chunked answers")
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection mid-answer")
            rest += chunk
        self._buffer = rest[length:]
        return status, rest[:length], close

    def request(self, method: str, path: str, body: Any = None) -> Response:
        data = self._encode(method, path, body)
        began = time.perf_counter()
        for attempt in (1, 2):
            sock = self._connect()
            try:
                sock.sendall(data)
                status, payload, close = self._read_answer(sock)
                break
            except (ConnectionError, OSError):
                # The server closed the connection (e.g. after an error answer): reconnect once.
                self.close()
                if attempt == 2:
                    raise
        if close:
            self.close()
        return Response(status, payload, (time.perf_counter() - began) * 1000.0)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> Response:
        return self.request("POST", TRIGGER_PATH.format(dag_id=dag_id), {"conf": conf or {}})

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def bearer_token(port: int, username: str, password: str) -> str:
    """A token from POST /auth/token, as Airflow 3's clients get one."""
    client = ApiClient(port)
    try:
        answer = client.request("POST", "/auth/token", {"username": username, "password": password})
    finally:
        client.close()
    if answer.status not in (200, 201):
        raise RuntimeError(f"POST /auth/token answered {answer.status}: {answer.body[:300]!r}")
    token: str = answer.json()["access_token"]
    return token


@dataclass(slots=True)
class LoadResult:
    """What a batch of triggers from one or more clients came to."""

    clients: int
    sent: int  # requests sent (all asked for, unless a time limit cut the load short)
    seconds: float  # from the release of the clients to the last answer
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    run_ids: list[str] = field(default_factory=list)
    first_error: str | None = None
    unsent: int = 0  # requests a time limit kept the clients from sending

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def _client_main(
    port: int,
    header: tuple[str, str] | None,
    request: TriggerRequest,
    count: int,
    ready: Any,
    go: Any,
    out: Any,
    time_limit: float | None = None,
) -> None:
    """One client process: connect, warm the connection, wait for `go`, send `count` triggers
    (no new one once `time_limit` seconds have passed since `go`)."""
    client = ApiClient(port, None if header is None else Credentials(*header))
    client.request("GET", request.warm_path)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    run_ids: list[str] = []
    first_error: str | None = None
    ready.set()
    go.wait()
    stop_at = None if time_limit is None else time.monotonic() + time_limit
    sent = 0
    for _ in range(count):
        if stop_at is not None and time.monotonic() >= stop_at:
            break
        sent += 1
        try:
            answer = client.request("POST", request.path, request.body)
        except OSError as exc:  # a peer may drop connections under load: count it, go on
            statuses[0] += 1
            first_error = first_error or f"connection: {exc}"
            continue
        latencies.append(answer.ms)
        statuses[answer.status] += 1
        if 200 <= answer.status < 300:
            run_ids.append(str(answer.json()[request.run_id_field]))
        elif first_error is None:
            first_error = f"{answer.status}: {answer.body[:300].decode(errors='replace')}"
    client.close()
    out.put((latencies, dict(statuses), run_ids, first_error, time.monotonic(), sent))


def trigger_load(
    port: int,
    credentials: Credentials | None,
    dag_id: str,
    total: int,
    clients: int,
    *,
    request: TriggerRequest | None = None,
    time_limit: float | None = None,
) -> LoadResult:
    """`total` triggers split over `clients` client processes, released together. A status of 0
    counts a request whose connection failed (the server closed it or timed out). With
    `time_limit`, clients send no new request once that many seconds have passed (for a server
    that answers so slowly the whole load would take too long); `unsent` counts the rest."""
    request = request or TriggerRequest.slipstream(dag_id)
    header = None if credentials is None else (credentials.kind, credentials.header)
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    out = context.Queue()
    readies = []
    processes = []
    share, extra = divmod(total, clients)
    for index in range(clients):
        ready = context.Event()
        count = share + (1 if index < extra else 0)
        process = context.Process(
            target=_client_main,
            args=(port, header, request, count, ready, go, out, time_limit),
            daemon=True,
        )
        process.start()
        readies.append(ready)
        processes.append(process)
    for ready in readies:
        if not ready.wait(60):
            raise RuntimeError("a client process did not start within 60 s")
    began = time.monotonic()
    go.set()
    result = LoadResult(clients=clients, sent=0, seconds=0.0)
    last = began
    for _ in processes:
        latencies, statuses, run_ids, first_error, ended, sent = out.get(timeout=600)
        result.sent += sent
        result.latencies_ms.extend(latencies)
        result.statuses.update(statuses)
        result.run_ids.extend(run_ids)
        result.first_error = result.first_error or first_error
        last = max(last, ended)
    for process in processes:
        process.join(30)
    result.unsent = total - result.sent
    result.seconds = last - began
    return result


def sequential_load(
    port: int,
    credentials: Credentials | None,
    dag_id: str,
    total: int,
    *,
    warm_up: int = 50,
    request: TriggerRequest | None = None,
) -> LoadResult:
    """`total` triggers one after another on one connection, after `warm_up` unmeasured ones."""
    request = request or TriggerRequest.slipstream(dag_id)
    client = ApiClient(port, credentials)
    try:
        for _ in range(warm_up):
            client.request("POST", request.path, request.body)
        result = LoadResult(clients=1, sent=total, seconds=0.0)
        began = time.monotonic()
        for _ in range(total):
            answer = client.request("POST", request.path, request.body)
            result.latencies_ms.append(answer.ms)
            result.statuses[answer.status] += 1
            if not 200 <= answer.status < 300 and result.first_error is None:
                result.first_error = f"{answer.status}: {answer.body[:300]!r}"
        result.seconds = time.monotonic() - began
    finally:
        client.close()
    return result
