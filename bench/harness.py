"""One Slipstream deployment for the bench: a fresh SLIPSTREAM_HOME, a migrated database, the
bench's DAG files, and a real `slipstream scheduler` process started and stopped from here,
with the worker host it starts beside it (in a session of its own, found by its lock file).

Runs are triggered in this process through RunService (with a WakeupSender, as the CLI does),
and waited for with the outside probe first and the database second, so the bench sees a run
finish within about a millisecond without hammering the database while tasks run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psycopg

from bench import procs
from bench.probe import ProbeReader
from slipstream.clock import SystemClock
from slipstream.config import Settings
from slipstream.core.records import Run
from slipstream.errors import DagNotFound
from slipstream.lifeline import is_alive
from slipstream.services.dags import DagService
from slipstream.services.runs import RunService
from slipstream.services.sign_in import SignInService
from slipstream.services.users import UserService
from slipstream.store.db import Database
from slipstream.store.schema import migrate
from slipstream.wakeup import WakeupSender
from slipstream.worker.lock import holder_pid

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
_STOP_TIMEOUT_SECONDS = 30.0
# The Celery executor's broker when SLIPSTREAM_CELERY_BROKER_URL is not set: the machine's
# Redis, a database number of the bench's own, flushed before and after.
BENCH_BROKER_URL = "redis://127.0.0.1:6379/14"


def _flush_redis(url: str) -> None:
    """Empty the bench's Redis database (its queues and Celery's bookkeeping)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        raise BenchError(f"the Celery broker {url} does not answer: {exc}") from None
    finally:
        client.close()


def _end_host(pid: int) -> None:
    """A worker host after its scheduler stopped: it exits by itself once it holds no try;
    one still alive after a few seconds gets SIGTERM (it kills its tries and records them),
    then SIGKILL."""
    for signum, wait in ((None, 5.0), (signal.SIGTERM, _STOP_TIMEOUT_SECONDS)):
        if signum is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        deadline = time.monotonic() + wait
        while is_alive(pid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


class BenchError(RuntimeError):
    """The bench could not measure what it meant to (a run did not finish, a process died)."""


@dataclass(frozen=True, slots=True)
class Triggered:
    run: Run
    before_ns: int  # time.time_ns() just before RunService.trigger was called
    after_ns: int  # ... and just after it returned


@dataclass(frozen=True, slots=True)
class Finished:
    run: Run  # the finished run as recorded
    seen_ns: int  # when the bench saw it finished


class Deployment:
    """A scheduler in a fresh home. Use as a context manager: the scheduler is stopped (SIGTERM,
    then SIGKILL of what is left of its tree) and a PostgreSQL database dropped on the way out.
    """

    def __init__(
        self,
        root: Path,
        name: str,
        *,
        db_kind: str = "sqlite",
        executor: str = "local",
        migrated: bool = True,
        celery_workers: int = 1,
    ) -> None:
        self.home = root / name
        self.dags_folder = self.home / "dags"
        self.dags_folder.mkdir(parents=True)
        self.db_kind = db_kind
        self._pg_name: str | None = None
        self.env = {
            **os.environ,
            "SLIPSTREAM_HOME": str(self.home),
            "SLIPSTREAM_LOAD_EXAMPLES": "false",
        }
        self.executor = executor
        self.celery_workers = celery_workers
        self._flush_broker = False
        self.worker_processes: list[subprocess.Popen[bytes]] = []
        if executor != "local":
            self.env["SLIPSTREAM_EXECUTOR"] = executor
        if executor == "celery":
            if not self.env.get("SLIPSTREAM_CELERY_BROKER_URL"):
                self.env["SLIPSTREAM_CELERY_BROKER_URL"] = BENCH_BROKER_URL
                self._flush_broker = True
                _flush_redis(BENCH_BROKER_URL)
            # Each worker serves its logs on a port of its own: never another install's 8793.
            self.env["SLIPSTREAM_WORKER_LOG_SERVER_PORT"] = str(procs.free_port())
        if db_kind == "postgres":
            self._pg_name = f"slipstream_bench_{secrets.token_hex(6)}"
            with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as admin:
                admin.execute(f'CREATE DATABASE "{self._pg_name}"')
            self.env["SLIPSTREAM_DATABASE_URL"] = (
                f"postgresql+psycopg://postgres@127.0.0.1:5432/{self._pg_name}"
            )
        elif db_kind != "sqlite":
            raise ValueError(f"unknown database kind {db_kind!r} (sqlite, postgres)")
        self.settings = Settings.from_env(self.env)
        self.db = Database(self.settings.database_url)
        if migrated:  # else the first command launched (standalone) migrates a fresh database
            migrate(self.db)
        self.wakeup = WakeupSender(self.settings.wakeup_path)
        self.runs = RunService(self.db, clock=SystemClock(), wakeup=self.wakeup)
        self.dags = DagService(self.db, wakeup=self.wakeup)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.home / "scheduler.out"
        self.api_process: subprocess.Popen[bytes] | None = None
        self.api_log_path = self.home / "api.out"
        self.api_port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Deployment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write_dag(self, name: str, source: str) -> Path:
        path = self.dags_folder / f"{name}.py"
        path.write_text(source)
        return path

    def _launch(self, *args: str, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
        """`slipstream <args>` in this home, its output appended to `log_path`, in a session of
        its own (Ctrl-C reaches the bench, which then stops it) and dying with the bench;
        returns the process and time.time_ns() just before the launch."""
        with log_path.open("ab") as log:
            launched = time.time_ns()
            process = subprocess.Popen(
                [sys.executable, "-m", "slipstream.cli.main", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=procs.die_with_parent,  # noqa: PLW1509
            )
        return process, launched

    def start(self, timeout: float = 60.0) -> tuple[int, int]:
        """Launch `slipstream scheduler`; return (launched_ns, listening_ns): time.time_ns()
        just before the launch and when its wake-up socket first existed."""
        if self.process is not None:
            raise BenchError("the scheduler is already running")
        socket_path = self.settings.wakeup_path
        self.process, launched = self._launch("scheduler", log_path=self.log_path)
        deadline = time.monotonic() + timeout
        while not socket_path.exists():
            if self.process.poll() is not None:
                raise BenchError(f"the scheduler exited at start-up:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"the scheduler did not listen within {timeout}s")
            time.sleep(0.001)
        listening = time.time_ns()
        if self.executor == "celery":
            self.start_celery_workers(timeout)
        return launched, listening

    def start_celery_workers(self, timeout: float = 60.0) -> None:
        """Launch `slipstream celery worker` processes (as many as `celery_workers`) and wait
        until each consumes."""
        for index in range(len(self.worker_processes), self.celery_workers):
            log_path = self.home / f"celery-worker-{index + 1}.out"
            process, _ = self._launch(
                "celery", "worker", "--hostname", f"bench{index + 1}@%h", log_path=log_path
            )
            self.worker_processes.append(process)
            deadline = time.monotonic() + timeout
            while "ready" not in log_path.read_text(errors="replace"):
                if process.poll() is not None:
                    raise BenchError(
                        f"celery worker {index + 1} exited at start-up:\n"
                        + log_path.read_text(errors="replace")[-4000:]
                    )
                if time.monotonic() > deadline:
                    raise BenchError(f"celery worker {index + 1} was not ready within {timeout}s")
                time.sleep(0.01)

    def stop_celery_workers(self) -> None:
        """SIGTERM each worker (a warm shutdown), then SIGKILL its group if it lingers."""
        processes, self.worker_processes = self.worker_processes, []
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def start_standalone(self) -> int:
        """Launch `slipstream standalone` (it migrates the database, creates admin, and runs the
        scheduler, workers and API server) on a free port; return time.time_ns() just before the
        launch. The caller polls for readiness: that is what start-up measures."""
        if self.process is not None:
            raise BenchError("the scheduler is already running")
        self.api_port = procs.free_port()
        self.process, launched = self._launch(
            "standalone", "--host", "127.0.0.1", "--port", str(self.api_port),
            log_path=self.log_path,
        )  # fmt: skip
        return launched

    def api_healthy(self) -> bool:
        """Whether GET /api/v1/health answers 200 now."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.api_port}/api/v1/health", timeout=5
            ) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def wait_api_healthy(self, timeout: float = 60.0, every: float = 0.005) -> int:
        """Poll the health endpoint until it answers 200; return time.time_ns() when it did."""
        deadline = time.monotonic() + timeout
        while not self.api_healthy():
            for process in (self.process, self.api_process):
                if process is not None and process.poll() is not None:
                    raise BenchError(
                        f"exited while starting:\n{self.log_tail()}\n{self.api_log_tail()}"
                    )
            if time.monotonic() > deadline:
                raise BenchError(f"the API did not answer within {timeout:g} s")
            time.sleep(every)
        return time.time_ns()

    def start_api(self, timeout: float = 60.0) -> int:
        """Launch `slipstream api-server` on a free port; return the port once it is healthy."""
        if self.api_process is not None:
            raise BenchError("the API server is already running")
        self.api_port = procs.free_port()
        self.api_process, _ = self._launch(
            "api-server", "--host", "127.0.0.1", "--port", str(self.api_port),
            log_path=self.api_log_path,
        )  # fmt: skip
        self.wait_api_healthy(timeout)
        return self.api_port

    def create_user(self, username: str, role: str = "Admin") -> str:
        """A user made in-process (as `slipstream users create` does); returns its password."""
        password = secrets.token_urlsafe(16)
        clock = SystemClock()
        users = UserService(self.db, clock=clock, sign_ins=SignInService(self.db, clock=clock))
        users.create(
            username=username,
            email=f"{username}@bench.invalid",
            first_name=username,
            last_name="Bench",
            role=role,
            password=password,
        )
        return password

    def stop_api(self) -> None:
        process, self.api_process = self.api_process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def api_log_tail(self, lines: int = 40) -> str:
        if not self.api_log_path.exists():
            return ""
        return "\n".join(self.api_log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError("the scheduler is not running")
        return self.process.pid

    @property
    def host_pid(self) -> int | None:
        """The worker host of this home (the scheduler starts it), None when none runs."""
        return holder_pid(self.settings.worker_lock_path)

    def members(self) -> list[procs.ProcStat]:
        """The scheduler's (or standalone's) process tree and the worker host's: the host is
        its child only until the scheduler exits, and may have been started by someone else."""
        found = procs.tree(self.pid)
        host = self.host_pid
        if host is not None and host not in {member.pid for member in found}:
            found += procs.tree(host)
        return found

    def stop(self) -> None:
        """SIGTERM the scheduler and wait (it detaches from the worker host, which exits once
        it holds no try); then end the host if it has not, and SIGKILL whatever is left."""
        process, self.process = self.process, None
        if process is None:
            return
        members = [member.pid for member in procs.tree(process.pid)]
        host = self.host_pid
        if host is not None:
            members += [member.pid for member in procs.tree(host)]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if host is not None:
            _end_host(host)
        for pid in members[1:]:  # only processes this scheduler started, and its host's
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        try:
            self.stop_api()
            self.stop()
            self.stop_celery_workers()
            if self._flush_broker:
                _flush_redis(BENCH_BROKER_URL)
        finally:
            self.wakeup.close()
            self.db.dispose()
            if self._pg_name is not None:
                with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
                self._pg_name = None

    # -- runs --------------------------------------------------------------------------------

    def trigger(self, dag_id: str, *, parse_timeout: float = 0.0) -> Triggered:
        """Trigger a run. With `parse_timeout`, retry while the DAG is not parsed yet."""
        deadline = time.monotonic() + parse_timeout
        while True:
            before = time.time_ns()
            try:
                run = self.runs.trigger(dag_id, triggered_by="bench").run
            except DagNotFound:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)
                continue
            return Triggered(run, before, time.time_ns())

    def wait(
        self, run: Run, probe: ProbeReader, last_task: str, *, timeout: float = 600.0
    ) -> Finished:
        """Wait until `run` has finished. While its last task has not written its probe `end`,
        look at the database only every 100 ms (a failed run ends without it); once it has,
        every millisecond."""
        deadline = time.monotonic() + timeout
        next_look = 0.0
        while True:
            probe.poll()
            now = time.monotonic()
            last_ended = probe.ended(run.run_id, last_task)
            if last_ended or now >= next_look:
                current = self.runs.get(run.dag_id, run.run_id)
                if current.state.is_finished:
                    return Finished(current, time.time_ns())
                next_look = now + 0.1
            if now > deadline:
                raise BenchError(f"run {run.run_id} of {run.dag_id} not finished in {timeout}s")
            if self.process is not None and self.process.poll() is not None:
                raise BenchError(f"the scheduler died:\n{self.log_tail()}")
            time.sleep(0.001)

    def wait_for_dags(self, count: int, timeout: float = 120.0) -> None:
        """Wait until at least `count` active DAGs are in the database."""
        deadline = time.monotonic() + timeout
        while self.dags.list_dags(limit=1)[1] < count:
            if time.monotonic() > deadline:
                raise BenchError(f"fewer than {count} DAGs parsed after {timeout}s")
            time.sleep(0.05)

    # -- the scheduler's output --------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def problems(self) -> list[str]:
        """Lines of the scheduler's and API server's output that say something went wrong."""
        found = []
        for path in (self.log_path, self.api_log_path):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()
                found += [
                    f"{path.stem}: {line}"
                    for line in text
                    if "Traceback" in line or " ERROR " in line or line.startswith("ERROR")
                ]
        return found
