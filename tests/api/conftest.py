"""A real `slipstream api-server` process on a free port, on SQLite and on PostgreSQL.

Each test module gets one server per backend (starting one costs a second or two); tests that
need a clean slate use DAG ids or users of their own. Under xdist a module's tests on one backend
run on one worker (tests/scheduling.py), so that server starts once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from slipstream.bootstrap import dag_file_sync
from slipstream.cli.main import cli
from slipstream.clock import SystemClock
from slipstream.config import Settings
from slipstream.services.dag_files import SyncSummary
from slipstream.services.runs import RunService
from slipstream.store.db import Database
from tests.conftest import PgTemplate, copy_sqlite_template, drop_pg_database, pg_url
from tests.hosts import end_worker_host


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
    """A home with the examples loaded, a migrated database and a server process on it.

    `database_url` is None for the home's own SQLite file, copied here from `sqlite_template`."""

    def __init__(self, home: Path, database_url: str | None, sqlite_template: Path) -> None:
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
        else:
            copy_sqlite_template(sqlite_template, home / "slipstream.db")
        self.settings = Settings.from_env(self.env)
        self.db = Database(self.settings.database_url)
        self.runs = RunService(self.db, clock=SystemClock())
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.server: subprocess.Popen[bytes] | None = None

    def slipstream(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a `slipstream` command against this home, in this process (CliRunner): the
        same command, without the second or so of CPU a new interpreter spends importing it.
        The servers, the scheduler and test_remote_cli's client are real processes."""
        result = CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)
        return subprocess.CompletedProcess(
            ["slipstream", *args], result.exit_code, result.stdout, result.stderr
        )

    def create_user(self, username: str, password: str, role: str) -> None:
        args = [
            "users", "create",
            "--username", username,
            "--password", password,
            "--role", role,
            "--email", f"{username}@example.com",
            "--firstname", username,
            "--lastname", "Test",
        ]  # fmt: skip
        result = self.slipstream(*args)
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
        assert self.server is None, "this home's API server is already started"
        server = self.server = self.spawn(
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
        end_worker_host(self.settings.worker_lock_path)  # a scheduler's, if it holds tries
        self.db.dispose()

    def output(self, name: str) -> str:
        path = self.home / f"{name}.out"
        return path.read_text() if path.exists() else ""


def _server(
    request: pytest.FixtureRequest, home: Path, sqlite_template: Path
) -> Iterator[ApiServer]:
    """A home on SQLite, or on a new PostgreSQL database (a copy of the migrated template)."""
    pg_name = None
    if request.param == "postgresql":  # SQLite's tests run without a PostgreSQL server
        pg_template: PgTemplate = request.getfixturevalue("pg_template")
        pg_name = pg_template.create()
    server = ApiServer(home, pg_url(pg_name) if pg_name else None, sqlite_template)
    try:
        yield server
    finally:
        server.stop()
        if pg_name:
            drop_pg_database(pg_name)
    for name in ("api", "scheduler"):
        assert "Traceback" not in server.output(name), server.output(name)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def module_home(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> Iterator[ApiServer]:
    """A home shared by one module's tests, with nothing started yet: a module fixture may
    set its environment or make users before it starts the server."""
    home = tmp_path_factory.mktemp("api") / "home"
    yield from _server(request, home, sqlite_template)


@pytest.fixture(scope="module")
def api(module_home: ApiServer) -> ApiServer:
    """A running API server, shared by one module's tests, with the example DAGs stored."""
    if module_home.server is None:
        module_home.sync_dags()
        module_home.start()
    return module_home


@pytest.fixture(params=BACKENDS)
def fresh_api(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[ApiServer]:
    """A home and database of this test's own, with nothing started."""
    yield from _server(request, tmp_path / "home", sqlite_template)
