"""A home with a real `slipstream scheduler` and the worker host it starts (or one started by
hand), on SQLite or PostgreSQL: processes to kill and restart, and what the database says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from slipstream.clock import SystemClock
from slipstream.config import Settings
from slipstream.core.records import Run, TaskInstance, TaskTry
from slipstream.services.runs import RunService
from slipstream.store import outcomes as outcomes_store
from slipstream.store.db import Database
from slipstream.store.schema import migrate
from slipstream.wakeup import WakeupSender
from slipstream.worker.lock import holder_pid
from tests.hosts import end_worker_host


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Home:
    def __init__(self, root: Path, database_url: str | None = None, **env: str) -> None:
        self.root = root
        (root / "dags").mkdir(parents=True)
        self.env = {
            **os.environ,
            "SLIPSTREAM_HOME": str(root),
            "SLIPSTREAM_LOAD_EXAMPLES": "false",
            "SLIPSTREAM_WORKERS": "2",
            "SLIPSTREAM_HEARTBEAT_SECONDS": "0.5",
            "SLIPSTREAM_LOST_AFTER_SECONDS": "3",
            "SLIPSTREAM_WORKER_IDLE_EXIT_SECONDS": "5",
            **env,
        }
        if database_url is not None:
            self.env["SLIPSTREAM_DATABASE_URL"] = database_url
        self.settings = Settings.from_env(self.env)
        self.db = Database(self.settings.database_url)
        migrate(self.db)
        self.wakeup = WakeupSender(self.settings.wakeup_path)
        self.runs = RunService(self.db, clock=SystemClock(), wakeup=self.wakeup)
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.processes: list[subprocess.Popen[bytes]] = []
        self._scheduler_starts = 0

    def write_dag(self, name: str, source: str) -> None:
        (self.root / "dags" / f"{name}.py").write_text(textwrap.dedent(source))

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.out").open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "slipstream.cli.main", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def output(self, name: str) -> str:
        path = self.root / f"{name}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_scheduler(self) -> subprocess.Popen[bytes]:
        self._scheduler_starts += 1
        name = f"scheduler-{self._scheduler_starts}"
        self.scheduler = self.spawn(name, "scheduler")
        scheduler = self.scheduler
        wait_for(
            lambda: "ready" in self.output(name) or scheduler.poll() is not None,
            90,
            "the scheduler to be ready",
        )
        assert scheduler.poll() is None, self.output(name)
        return scheduler

    def kill_scheduler(self) -> None:
        assert self.scheduler is not None
        self.scheduler.send_signal(signal.SIGKILL)
        self.scheduler.wait(30)

    def stop_scheduler(self) -> int:
        assert self.scheduler is not None
        self.scheduler.send_signal(signal.SIGTERM)
        return self.scheduler.wait(30)

    def host_pid(self) -> int | None:
        return holder_pid(self.settings.worker_lock_path)

    def trigger(self, dag_id: str, conf: dict[str, object] | None = None) -> Run:
        def attempt() -> Run | None:
            try:
                return self.runs.trigger(dag_id, conf=conf).run
            except Exception:  # not parsed yet
                return None

        run = wait_for(attempt, 60, f"DAG {dag_id} to be parsed")
        assert isinstance(run, Run)
        return run

    def finished(self, run: Run, timeout: float = 60) -> Run:
        done = self.runs.wait(run.dag_id, run.run_id, timeout=timeout)
        assert done.state.is_finished, f"{run.run_id} still {done.state}"
        return done

    def instance(self, run: Run, task_id: str) -> TaskInstance:
        return {ti.task_id: ti for ti in self.runs.task_instances(run.dag_id, run.run_id)}[task_id]

    def tries(self, run: Run, task_id: str) -> list[TaskTry]:
        return self.runs.tries(run.dag_id, run.run_id, task_id)

    def outbox_rows(self) -> int:
        with self.db.read() as conn:
            return outcomes_store.count(conn)

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        # An autostarted host exits on its own once its scheduler detached and its tries
        # ended; a test that killed its scheduler may leave one holding tries: end it.
        end_worker_host(self.settings.worker_lock_path)
        self.wakeup.close()
        self.db.dispose()

    def tracebacks(self) -> list[str]:
        found = []
        for path in [*self.root.glob("*.out"), self.settings.worker_log_path]:
            if path.exists() and "Traceback" in path.read_text(errors="replace"):
                found.append(f"{path}:\n{path.read_text(errors='replace')}")
        return found


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Home]:
    url = request.getfixturevalue("pg_db").url if request.param == "postgresql" else None
    made = Home(tmp_path / "home", url)
    try:
        yield made
    finally:
        made.close()
    assert made.tracebacks() == []


@pytest.fixture
def sqlite_home(tmp_path: Path) -> Iterator[Home]:
    made = Home(tmp_path / "home")
    try:
        yield made
    finally:
        made.close()
    assert made.tracebacks() == []
