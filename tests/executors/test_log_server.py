"""The worker's log server over real HTTP: signed reads from an offset, refusals that say why,
nothing outside the log folder, and the logs service reading a try that ran on another
machine through it."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipstream.core.log_paths import log_path_for
from slipstream.errors import TaskInstanceNotFound
from slipstream.executors.log_server import (
    SIGNATURE_SECONDS,
    LogServer,
    RemoteLog,
    RemoteLogError,
    log_server_key,
    sign,
)
from slipstream.services.logs import LogService, RemoteLogs

KEY = log_server_key(b"the install's web secret key, shared")
TEXT = "first line\nsecond line: caf\u00e9\n"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LogServer, Path]]:
    folder = tmp_path / "worker-logs"
    path = log_path_for(folder, "etl", "manual__1", "load", 1)
    path.parent.mkdir(parents=True)
    path.write_text(TEXT)
    server = LogServer(folder, KEY, host="127.0.0.1", port=0)
    server.start()
    try:
        yield server, path.relative_to(folder)
    finally:
        server.stop()


def test_a_signed_read_returns_the_log_from_an_offset(served: tuple[LogServer, Path]) -> None:
    server, relative = served
    reader = RemoteLog(lambda: KEY, port=server.port)
    whole = reader.read("127.0.0.1", relative.as_posix())
    assert whole is not None and whole.data.decode() == TEXT
    assert whole.size == len(TEXT.encode())
    rest = reader.read("127.0.0.1", relative.as_posix(), offset=11, limit=6)
    assert rest is not None and rest.data == b"second"
    assert rest.size == len(TEXT.encode())  # the whole log's size, whatever piece was asked
    assert reader.read("127.0.0.1", "etl/nothing/here.log") is None


def test_a_request_signed_with_another_key_is_refused_and_says_what_to_share(
    served: tuple[LogServer, Path],
) -> None:
    server, relative = served
    stranger = RemoteLog(lambda: log_server_key(b"another install"), port=server.port)
    with pytest.raises(RemoteLogError, match="SLIPSTREAM_WEB_SECRET_KEY"):
        stranger.read("127.0.0.1", relative.as_posix())


def _get(port: int, target: str, authorization: str | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {} if authorization is None else {"Authorization": authorization}
        conn.request("GET", target, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_unsigned_expired_and_other_paths_signatures_are_refused(
    served: tuple[LogServer, Path],
) -> None:
    server, relative = served
    target = f"/log/{relative.as_posix()}"
    assert _get(server.port, target, None) == (403, b"refused: no signature\n")
    expired = sign(KEY, relative.as_posix(), int(time.time()) - 1)
    assert _get(server.port, target, expired) == (403, b"refused: an expired signature\n")
    far = sign(KEY, relative.as_posix(), int(time.time()) + 10 * SIGNATURE_SECONDS)
    assert _get(server.port, target, far)[0] == 403
    other = sign(KEY, "etl/other.log", int(time.time()) + 30)
    assert _get(server.port, target, other)[0] == 403
    good = sign(KEY, relative.as_posix(), int(time.time()) + 30)
    assert _get(server.port, target, good) == (200, TEXT.encode())


def test_nothing_outside_the_log_folder_is_served(
    served: tuple[LogServer, Path], tmp_path: Path
) -> None:
    server, _ = served
    (tmp_path / "secret.txt").write_text("not a log")
    for escape in ("../secret.txt", "/etc/passwd", "etl/../../secret.txt"):
        status, body = _get(server.port, f"/log/{escape}", sign(KEY, escape, int(time.time()) + 30))
        assert status == 400, (escape, status, body)
        assert b"not a log" not in body


def test_bad_offsets_are_refused_by_name(served: tuple[LogServer, Path]) -> None:
    server, relative = served
    path = relative.as_posix()
    good = sign(KEY, path, int(time.time()) + 30)
    status, body = _get(server.port, f"/log/{path}?offset=x", good)
    assert (status, body) == (400, b"offset and limit must be whole numbers\n")
    status, body = _get(server.port, f"/log/{path}?offset=-1", good)
    assert (status, body) == (400, b"offset and limit must not be negative\n")


def test_a_worker_that_does_not_answer_is_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    reader = RemoteLog(lambda: KEY, port=port, timeout=2)
    with pytest.raises(RemoteLogError, match=r"on 127\.0\.0\.1, whose log server .* did not"):
        reader.read("127.0.0.1", "etl/a.log")


def test_the_logs_service_reads_a_try_that_ran_on_another_machine(
    served: tuple[LogServer, Path], tmp_path: Path
) -> None:
    server, _ = served
    where: dict[tuple[str, str, str, int, int], str] = {
        ("etl", "manual__1", "load", 1, -1): "127.0.0.1"
    }
    logs = LogService(
        tmp_path / "api-logs",  # the API server's own folder: it has no copy
        remote=RemoteLogs(
            RemoteLog(lambda: KEY, port=server.port),
            locate=lambda *key: where.get(key),
            local_hostname="api-host",
        ),
    )
    assert logs.size("etl", "manual__1", "load", 1) == len(TEXT.encode())
    first = logs.read("etl", "manual__1", "load", 1, limit=11)
    assert first.text == "first line\n"
    rest = logs.read("etl", "manual__1", "load", 1, offset=first.offset)
    assert first.text + rest.text == TEXT
    # A try of this machine, or one that never started, has no log anywhere: 404 as before.
    where[("etl", "manual__1", "load", 2, -1)] = "api-host"
    with pytest.raises(TaskInstanceNotFound):
        logs.read("etl", "manual__1", "load", 2)
    with pytest.raises(TaskInstanceNotFound):
        logs.read("etl", "manual__1", "load", 3)
    assert logs.size("etl", "manual__1", "load", 3) is None


def test_an_unreachable_worker_becomes_a_line_of_the_log_not_an_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logs = LogService(
        tmp_path / "api-logs",
        remote=RemoteLogs(
            RemoteLog(lambda: KEY, port=port, timeout=2),
            locate=lambda *key: "127.0.0.1",
            local_hostname="api-host",
        ),
    )
    chunk = logs.read("etl", "manual__1", "load", 1, offset=5)
    assert chunk.offset == 5  # read again from there next time
    assert (
        chunk.text.startswith("*** the log is on 127.0.0.1")
        and "is its worker running" in chunk.text
    )
    assert logs.size("etl", "manual__1", "load", 1) is None
