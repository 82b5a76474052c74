"""A real `slipstream api-server` process on a free port, on SQLite and on PostgreSQL.

Each test module gets one server per backend (starting one costs a second or two); tests that
need a clean slate use DAG ids or users of their own.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from slipstream.bootstrap import dag_file_sync
from slipstream.clock import SystemClock
from slipstream.config import Settings
from slipstream.services.dag_files import SyncSummary
from slipstream.services.runs import RunService
from slipstream.store.db import Database
from slipstream.store.schema import migrate
from tests.conftest import PG_SERVER


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ApiServer:
    """A home with the examples loaded, a migrated database and a server process on it."""

    def __init__(self, home: Path, database_url: str | None) -> None:
        self.home = home
        (home / "dags").mkdir(parents=True)
        self.env = {
            **os.environ,
            "SLIPSTREAM_HOME": str(home),
            "SLIPSTREAM_LOAD_EXAMPLES": "true",
            "SLIPSTREAM_WORKERS": "2",
            "SLIPSTREAM_HEARTBEAT_SECONDS": "0.5",
            "SLIPSTREAM_LOST_AFTER_SECONDS": "3",
        }
        if database_url is not None:
            self.env["SLIPSTREAM_DATABASE_URL"] = database_url
        self.settings = Settings.from_env(self.env)
        self.db = Database(self.settings.database_url)
        migrate(self.db)
        self.runs = RunService(self.db, clock=SystemClock())
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def slipstream(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a real `slipstream` command against this home."""
        return subprocess.run(
            [sys.executable, "-m", "slipstream.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def create_user(self, username: str, password: str, role: str) -> None:
        result = self.slipstream(
            "users", "create",
            "--username", username,
            "--password", password,
            "--role", role,
            "--email", f"{username}@example.com",
            "--firstname", username,
            "--lastname", "Test",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    def sync_dags(self) -> SyncSummary:
        """Parse the home's DAG folders into the database now, from the test process, as a
        scheduler would: the API server never parses DAG files, so a DAG must be stored before
        a request names it."""
        return dag_file_sync(self.settings, self.db, SystemClock(), None).sync_now()

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.home / f"{name}.out").open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "slipstream.cli.main", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def start(self, *extra: str) -> None:
        server = self.spawn(
            "api", "api-server", "--host", "127.0.0.1", "--port", str(self.port), *extra
        )

        def healthy() -> bool:
            assert server.poll() is None, (self.home / "api.out").read_text()
            try:
                return requests.get(f"{self.base}/api/v1/health", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(healthy, 30, "the API server to answer")

    def start_scheduler(self) -> None:
        self.spawn("scheduler", "scheduler")
        wait_for(self.settings.wakeup_path.exists, 30, "the scheduler to listen")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.db.dispose()

    def output(self, name: str) -> str:
        path = self.home / f"{name}.out"
        return path.read_text() if path.exists() else ""


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for one test module."""
    name = f"slipstream_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _server(request: pytest.FixtureRequest, home: Path) -> Iterator[ApiServer]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    server = ApiServer(home, url)
    try:
        yield server
    finally:
        server.stop()
    for name in ("api", "scheduler"):
        assert "Traceback" not in server.output(name), server.output(name)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """A running API server, shared by one module's tests, with the example DAGs stored."""
    for server in _server(request, tmp_path_factory.mktemp("api") / "home"):
        server.sync_dags()
        server.start()
        yield server


@pytest.fixture(params=BACKENDS)
def fresh_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiServer]:
    """A home of this test's own, with nothing started."""
    yield from _server(request, tmp_path / "home")
