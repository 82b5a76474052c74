"""One fresh `airflow standalone` deployment for the Airflow peer: its home and DAG folder, the
process tree (started so it dies with the bench), sign-in as the generated admin, and the few
REST API v2 calls the workloads need (DAG visible, pause, trigger, a run's state, run counts).

Airflow keeps its own defaults (SQLite, LocalExecutor); the only settings given are the ones a
second deployment on the same machine needs: its home, its DAG folder, its port, no examples,
and where the task supervisor finds the execution API (by default http://localhost:8080, which is
not where this deployment listens, so every task would fail with "connection refused"). With
`db="postgres"` (the bench's `--db postgres`) it runs on a fresh PostgreSQL database instead,
dropped on the way out, as Airflow's docs tell any deployment past a trial to do.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import procs
from bench.http import ApiClient, Credentials, Response, TriggerRequest, bearer_token
from bench.peers.base import PeerError, PeerProcess, free_port, tail
from bench.probe import ProbeReader

ADMIN = "admin"
PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"
FINISHED = frozenset({"success", "failed"})
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
# A line of the standalone output that says something went wrong: structlog's "[error    ]",
# the stdlib's "ERROR", or the start of a traceback.
_PROBLEM = re.compile(r"\[error\s*\]|\bERROR\b|Traceback|\[critical\s*\]")
# Settings worth recording next to the figures (read from the generated airflow.cfg).
_RECORDED_SETTINGS = (
    ("core", "executor"),
    ("core", "parallelism"),
    ("core", "max_active_tasks_per_dag"),
    ("core", "max_active_runs_per_dag"),
    ("database", "sql_alchemy_conn"),
    ("scheduler", "scheduler_heartbeat_sec"),
    ("api", "workers"),
    ("dag_processor", "refresh_interval"),
    ("dag_processor", "min_file_process_interval"),
)


@dataclass(frozen=True, slots=True)
class Triggered:
    dag_id: str
    run_id: str
    before_ns: int  # time.time_ns() just before the request
    after_ns: int  # ... and once its answer was read


def quoted(run_id: str) -> str:
    """A run id as a path segment (Airflow's manual run ids hold ':' and '+')."""
    return urllib.parse.quote(run_id, safe="")


class Standalone:
    """`airflow standalone` in a fresh home under `root`. Use as a context manager: leaving it
    stops every process the deployment started."""

    def __init__(
        self, bin_dir: Path, root: Path, dag_files: dict[str, str], *, db: str = "sqlite"
    ) -> None:
        if db not in ("sqlite", "postgres"):
            raise ValueError(f"unknown database kind {db!r} (sqlite, postgres)")
        self.bin_dir = bin_dir
        self.db = db
        self.pg_name: str | None = None
        self.home = root
        self.dags_dir = root / "dags"
        self.log_path = root / "standalone.log"
        self.port = free_port()
        self.process: PeerProcess | None = None
        self.client: ApiClient | None = None
        self.read_errors = 0  # 5xx answers to reads of a run's state, asked again
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags_dir.mkdir(exist_ok=True)
        for name, text in dag_files.items():
            (self.dags_dir / f"{name}.py").write_text(text)

    # -- the process ---------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        # Nothing of the bench's own environment that could steer Airflow or its Python.
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("AIRFLOW") and key not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(
            {
                # standalone launches `airflow scheduler`, `airflow api-server`, ... by name.
                "PATH": f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}",
                "VIRTUAL_ENV": str(self.bin_dir.parent),
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_dir),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
                    f"http://127.0.0.1:{self.port}/execution/"
                ),
            }
        )
        if self.pg_name is not None:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
                f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.pg_name}"
            )
        return env

    def start(self) -> int:
        """Launch `airflow standalone`; returns time.time_ns() just before the launch."""
        if self.db == "postgres" and self.pg_name is None:
            self.pg_name = f"airflow_bench_{secrets.token_hex(6)}"
            with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as admin:
                admin.execute(f'CREATE DATABASE "{self.pg_name}"')
        self.process = PeerProcess(
            [str(self.bin_dir / "airflow"), "standalone"],
            env=self.env(),
            log_path=self.log_path,
            cwd=self.home,
        )
        return self.process.launched_ns

    @property
    def pid(self) -> int:
        if self.process is None:
            raise PeerError("airflow standalone was not started")
        return self.process.pid

    def check_alive(self) -> None:
        if self.process is not None and not self.process.alive():
            raise PeerError(f"airflow standalone exited ({self.process.process.returncode})")

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.process is not None:
            self.process.stop()
        if self.pg_name is not None:
            with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
            self.pg_name = None

    def __enter__(self) -> Standalone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def components(self) -> list[str]:
        """The command lines of the deployment's processes (Airflow names them by role:
        "airflow scheduler", "airflow api_server ...", "airflow worker -- LocalExecutor" ...)."""
        if self.process is None:
            return []
        lines = [procs.cmdline(member.pid) for member in procs.tree(self.process.pid)]
        return [line for line in lines if line]  # a zombie has no command line

    def component_alive(self, role: str) -> bool:
        return any(role in line for line in self.components())

    def log_tail(self, lines: int = 40) -> list[str]:
        return tail(self.log_path, lines).splitlines()

    def problems(self) -> list[str]:
        """The lines of the standalone output (every component's) that say something failed."""
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if _PROBLEM.search(line)]

    def settings(self) -> dict[str, str]:
        """The settings this deployment ran with, as Airflow wrote them into airflow.cfg
        (environment overrides win, as in Airflow)."""
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(self.home / "airflow.cfg")
        env = self.env()
        found: dict[str, str] = {}
        for section, key in _RECORDED_SETTINGS:
            override = env.get(f"AIRFLOW__{section.upper()}__{key.upper()}")
            found[f"{section}.{key}"] = str(override or parser.get(section, key, fallback=""))
        return found

    # -- the API -------------------------------------------------------------------------------

    def wait_healthy(self, timeout: float, *, every: float = 0.05) -> int:
        """Poll GET /api/v2/monitor/health until it answers 200 with every component it lists
        healthy; returns time.time_ns() when it did."""
        deadline = time.monotonic() + timeout
        probe = ApiClient(self.port)
        try:
            while True:
                self.check_alive()
                try:
                    answer = probe.request("GET", "/api/v2/monitor/health")
                    if answer.status == 200 and _all_healthy(answer.json()):
                        return time.time_ns()
                except (OSError, ValueError):
                    probe.close()
                if time.monotonic() > deadline:
                    raise PeerError(f"not healthy within {timeout:g} s")
                time.sleep(every)
        finally:
            probe.close()

    def sign_in(self, timeout: float = 60.0) -> Credentials:
        """A bearer token for the admin whose password standalone generated (valid 24 h by
        default, longer than any workload)."""
        path = self.home / PASSWORD_FILE
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                password = str(json.loads(path.read_text())[ADMIN])
                token = bearer_token(self.port, ADMIN, password)
                break
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                if time.monotonic() > deadline:
                    raise PeerError(f"could not sign in within {timeout:g} s: {exc}") from exc
                time.sleep(0.2)
        credentials = Credentials.bearer(token)
        self.client = ApiClient(self.port, credentials)
        return credentials

    def api(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200,)) -> Any:
        if self.client is None:
            raise PeerError("not signed in")
        answer: Response = self.client.request(method, path, body)
        if answer.status not in ok:
            raise PeerError(f"{method} {path} answered {answer.status}: {answer.body[:300]!r}")
        return answer.json()

    def wait_dag(self, dag_id: str, timeout: float) -> int:
        """Wait until the DAG processor has parsed `dag_id` (GET /api/v2/dags/{id} answers
        200); returns time.time_ns() then."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            assert self.client is not None
            answer = self.client.request("GET", f"/api/v2/dags/{dag_id}")
            if answer.status == 200:
                return time.time_ns()
            if answer.status != 404:
                raise PeerError(f"GET /api/v2/dags/{dag_id} answered {answer.status}")
            if time.monotonic() > deadline:
                raise PeerError(f"{dag_id} not parsed within {timeout:g} s")
            time.sleep(0.1)

    def wait_dag_count(self, count: int, timeout: float) -> int:
        """Wait until GET /api/v2/dags counts at least `count` DAGs."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            seen = int(self.api("GET", "/api/v2/dags?limit=100")["total_entries"])
            if seen >= count:
                return seen
            if time.monotonic() > deadline:
                raise PeerError(f"{seen} of {count} DAGs parsed after {timeout:g} s")
            time.sleep(0.5)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str) -> Triggered:
        before = time.time_ns()
        answer = self.api("POST", trigger_request(dag_id).path, trigger_request(dag_id).body)
        after = time.time_ns()
        return Triggered(dag_id, str(answer["dag_run_id"]), before, after)

    def run_state(self, dag_id: str, run_id: str) -> str:
        """The run's state, or "" when the API answered a 5xx: a client asks again (Airflow's
        API server answers reads 500 "Database error" while its SQLite is busy); every such
        answer is counted in `read_errors` and reported with the workload's figures."""
        if self.client is None:
            raise PeerError("not signed in")
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quoted(run_id)}"
        answer = self.client.request("GET", path)
        if answer.status >= 500:
            self.read_errors += 1
            return ""
        if answer.status != 200:
            raise PeerError(f"GET {path} answered {answer.status}: {answer.body[:300]!r}")
        return str(answer.json()["state"])

    def wait_run(
        self,
        triggered: Triggered,
        reader: ProbeReader,
        last_task: str,
        *,
        timeout: float,
    ) -> tuple[str, int]:
        """Wait until the run has finished; returns its state and time.time_ns() when the bench
        saw it. Until the last task has written its probe `end`, ask the API every 100 ms (a
        failed run ends without it); from then on, as fast as the API answers."""
        deadline = time.monotonic() + timeout
        next_look = 0.0
        while True:
            reader.poll()
            now = time.monotonic()
            last_ended = reader.ended(triggered.run_id, last_task)
            if last_ended or now >= next_look:
                state = self.run_state(triggered.dag_id, triggered.run_id)
                if state in FINISHED:
                    return state, time.time_ns()
                next_look = now + 0.1
            if now > deadline:
                raise PeerError(
                    f"run {triggered.run_id} of {triggered.dag_id} not finished in {timeout:g} s"
                )
            self.check_alive()
            time.sleep(0.002 if last_ended else 0.005)

    def run_states(self, dag_id: str) -> dict[str, str]:
        """Every run of `dag_id` and its state, a page of 100 at a time."""
        states: dict[str, str] = {}
        offset = 0
        while True:
            page = self.api(
                "GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&offset={offset}&order_by=id"
            )
            for run in page["dag_runs"]:
                states[str(run["dag_run_id"])] = str(run["state"])
            offset += len(page["dag_runs"])
            if not page["dag_runs"] or offset >= int(page["total_entries"]):
                return states

    def count_runs(self, dag_id: str, *states: str) -> int:
        """How many runs of `dag_id` are in one of `states` (one cheap request)."""
        query = "&".join(f"state={state}" for state in states)
        return int(
            self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=1&{query}")["total_entries"]
        )


def trigger_request(dag_id: str) -> TriggerRequest:
    """An Airflow 3 trigger on the wire: a manual run with no logical date (the field must be
    present in 3.x; null asks for none, so triggers of one DAG never clash on a date)."""
    return TriggerRequest(
        path=f"/api/v2/dags/{dag_id}/dagRuns",
        body={"logical_date": None, "conf": {}},
        run_id_field="dag_run_id",
        warm_path="/api/v2/monitor/health",
    )


def _all_healthy(health: Any) -> bool:
    if not isinstance(health, dict) or not health:
        return False
    return all(
        isinstance(part, dict) and part.get("status") == "healthy" for part in health.values()
    )
