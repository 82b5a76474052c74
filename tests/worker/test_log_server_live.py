"""`slipstream worker` serves its tries' logs to API servers on other machines: signed reads of
its log folder on SLIPSTREAM_WORKER_LOG_SERVER_PORT, with the home's web secret key; a second
worker finding the port taken still runs, and says why its logs are local only."""

from __future__ import annotations

import pytest

from slipstream.bootstrap import web_secret_key
from slipstream.core.log_paths import log_path_for
from slipstream.executors.log_server import RemoteLog, RemoteLogError, log_server_key
from tests.api.conftest import free_port
from tests.worker.conftest import Home, wait_for
from tests.worker.test_host import start_host

pytestmark = pytest.mark.slow


def test_the_worker_serves_its_logs_to_signed_readers_only(sqlite_home: Home) -> None:
    home = sqlite_home
    port = free_port()
    home.env["SLIPSTREAM_WORKER_LOG_SERVER_PORT"] = str(port)
    path = log_path_for(home.settings.log_folder, "etl", "manual__1", "load", 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("loaded 3 rows\n")
    start_host(home)
    relative = path.relative_to(home.settings.log_folder).as_posix()
    key = log_server_key(web_secret_key(home.settings))
    piece = RemoteLog(lambda: key, port=port).read("127.0.0.1", relative, offset=7)
    assert piece is not None and piece.data == b"3 rows\n"
    with pytest.raises(RemoteLogError, match="SLIPSTREAM_WEB_SECRET_KEY"):
        RemoteLog(lambda: log_server_key(b"x" * 32), port=port).read("127.0.0.1", relative)


def test_a_taken_port_leaves_the_worker_running_and_says_so(
    sqlite_home: Home, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = sqlite_home
    port = free_port()
    home.env["SLIPSTREAM_WORKER_LOG_SERVER_PORT"] = str(port)
    start_host(home)
    other = Home(tmp_path_factory.mktemp("other") / "home")
    other.env["SLIPSTREAM_WORKER_LOG_SERVER_PORT"] = str(port)
    try:
        host = other.spawn("worker", "worker")
        wait_for(
            lambda: "worker | ready" in other.output("worker") or host.poll() is not None,
            60,
            "the second worker host",
        )
        assert host.poll() is None, other.output("worker")
        said = other.output("worker")
        assert f"cannot listen on port {port}" in said
        assert "SLIPSTREAM_WORKER_LOG_SERVER_PORT" in said
    finally:
        other.close()
    assert other.tracebacks() == []
