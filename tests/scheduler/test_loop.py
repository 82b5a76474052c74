"""The scheduler as a real process: its worker host, real workers, SIGKILL and restart."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from slipstream.cli.main import cli
from slipstream.clock import SystemClock
from slipstream.config import Settings
from slipstream.core.records import ExitReason, Run
from slipstream.services.runs import RunService
from slipstream.store.db import Database
from slipstream.store.notify import PgHintSender
from slipstream.store.schema import migrate
from slipstream.wakeup import WakeupSender
from tests.hosts import end_worker_host

pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Deployment:
    def __init__(self, home: Path, database_url: str | None = None) -> None:
        self.home = home
        self.env = {
            **os.environ,
            "SLIPSTREAM_HOME": str(home),
            "SLIPSTREAM_LOAD_EXAMPLES": "false",
            "SLIPSTREAM_WORKERS": "2",
            "SLIPSTREAM_HEARTBEAT_SECONDS": "0.5",
            "SLIPSTREAM_LOST_AFTER_SECONDS": "3",
        }
        if database_url is not None:
            self.env["SLIPSTREAM_DATABASE_URL"] = database_url
        self.settings = Settings.from_env(self.env)
        (home / "dags").mkdir(parents=True)
        self.db = Database(self.settings.database_url)
        migrate(self.db)
        self.wakeup = WakeupSender(self.settings.wakeup_path)
        self.runs = RunService(self.db, clock=SystemClock(), wakeup=self.wakeup)
        self.process: subprocess.Popen[bytes] | None = None

    def write_dag(self, name: str, source: str) -> None:
        (self.home / "dags" / f"{name}.py").write_text(textwrap.dedent(source))

    def start(self) -> None:
        with (self.home / "scheduler.out").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "slipstream.cli.main", "scheduler"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.settings.wakeup_path.exists, 60, "the scheduler to listen")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        end_worker_host(self.settings.worker_lock_path)  # it may hold tries still

    def trigger(self, dag_id: str, conf: dict[str, object] | None = None) -> Run:
        def attempt() -> Run | None:
            try:
                return self.runs.trigger(dag_id, conf=conf).run
            except Exception:  # not parsed yet
                return None

        run = wait_for(attempt, 20, f"DAG {dag_id} to be parsed")
        assert isinstance(run, Run)
        return run

    def finished(self, run: Run, timeout: float = 30) -> Run:
        done = self.runs.wait(run.dag_id, run.run_id, timeout=timeout)
        assert done.state.is_finished, f"{run.run_id} still {done.state}"
        return done


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    url = request.getfixturevalue("pg_db").url if request.param == "postgresql" else None
    d = Deployment(tmp_path / "home", url)
    yield d
    d.stop()
    d.wakeup.close()
    d.db.dispose()
    out = d.home / "scheduler.out"
    if out.exists():
        assert "Traceback" not in out.read_text(), out.read_text()


def test_a_chain_runs_through_real_workers(deployment: Deployment) -> None:
    deployment.write_dag(
        "chain",
        """
        from datetime import datetime
        from slipstream import DAG, task, chain

        with DAG("chain", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            @task
            def first(**context):
                return context["dag_run"].conf["n"]

            @task
            def step(x):
                return x + 1

            value = first()
            for _ in range(5):
                value = step(value)
        """,
    )
    deployment.start()
    run = deployment.finished(deployment.trigger("chain", {"n": 1}))
    assert run.state.value == "success"
    states = {t.task_id: t.state.value for t in deployment.runs.task_instances("chain", run.run_id)}
    assert set(states.values()) == {"success"} and len(states) == 6


def test_execution_timeout_kills_the_try_and_its_children_then_retries(
    deployment: Deployment, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    deployment.write_dag(
        "slow",
        f"""
        from datetime import datetime, timedelta
        from slipstream import DAG, BashOperator

        with DAG("slow", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            BashOperator(
                task_id="sleepy",
                bash_command="sleep 60 & echo $! >> {pids}; wait",
                execution_timeout=timedelta(seconds=1),
                retries=1,
                retry_delay=timedelta(seconds=0),
            )
        """,
    )
    deployment.start()
    run = deployment.finished(deployment.trigger("slow"), timeout=30)
    assert run.state.value == "failed"
    tries = deployment.runs.tries("slow", run.run_id, "sleepy")
    assert [t.exit_reason for t in tries] == [ExitReason.TIMEOUT, ExitReason.TIMEOUT]
    assert all(t.error and "execution_timeout" in t.error for t in tries)
    for pid in map(int, pids.read_text().split()):
        wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists(), 10, f"sleep {pid} to die")


def test_sigkilled_scheduler_loses_no_run(deployment: Deployment, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    deployment.write_dag(
        "gated",
        f"""
        from datetime import datetime
        from pathlib import Path
        import time
        from slipstream import DAG, task

        # One run at a time, so the first triggered run is the one caught mid-try.
        with DAG("gated", schedule=None, start_date=datetime(2024, 1, 1),
                 max_active_runs=1) as dag:
            @task
            def before():
                return "ok"

            @task
            def wait_for_gate(x):
                Path({str(gate)!r} + ".started").write_text("1")
                while not Path({str(gate)!r}).exists():
                    time.sleep(0.05)
                return x

            @task
            def after(x):
                return x + "!"

            after(wait_for_gate(before()))
        """,
    )
    deployment.start()
    run = deployment.trigger("gated")
    queued_later = [deployment.trigger("gated") for _ in range(3)]
    wait_for(lambda: Path(str(gate) + ".started").exists(), 30, "the gated task to start")
    deployment.kill()
    # The try runs on in the worker host, which outlives its scheduler; more triggers still
    # land, and the gate opens while no scheduler runs.
    more = deployment.trigger("gated")
    gate.write_text("open")
    deployment.start()
    for r in [run, *queued_later, more]:
        assert deployment.finished(r, timeout=60).state.value == "success"
    # It ran once: the next scheduler adopted it, or applied its outcome from the outbox.
    tries = deployment.runs.tries("gated", run.run_id, "wait_for_gate")
    assert [t.exit_reason for t in tries] == [ExitReason.SUCCESS]


def test_cli_trigger_wait_reports_the_outcome(deployment: Deployment) -> None:
    deployment.write_dag(
        "outcomes",
        """
        from datetime import datetime
        from slipstream import DAG, task, Param

        with DAG("outcomes", schedule=None, start_date=datetime(2024, 1, 1),
                 params={"fail": Param(False, type="boolean")}) as dag:
            @task
            def maybe(params=None):
                if params["fail"]:
                    raise RuntimeError("asked to fail")
                return "fine"
            maybe()
        """,
    )
    deployment.start()

    def trigger_and_wait(*extra: str) -> Result:
        # The command in this process; the scheduler and its workers are real processes.
        command = ["dags", "trigger", "outcomes", "--wait", *extra]
        return CliRunner().invoke(cli, command, env=deployment.env, catch_exceptions=False)

    ok = trigger_and_wait()
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.strip().startswith("manual__")
    bad = trigger_and_wait("--conf", json.dumps({"fail": True}))
    assert bad.exit_code == 1 and "failed" in bad.stderr
    refused = trigger_and_wait("--conf", json.dumps({"fail": "yes"}))
    assert refused.exit_code == 2 and "'fail'" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_second_scheduler_refuses_to_start_and_harms_nothing(deployment: Deployment) -> None:
    deployment.write_dag(
        "solo",
        """
        from datetime import datetime
        from slipstream import DAG, task

        with DAG("solo", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            @task
            def only():
                return 1
            only()
        """,
    )
    deployment.start()
    second = subprocess.run(
        [sys.executable, "-m", "slipstream.cli.main", "scheduler"],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 5, second.stderr
    assert "another scheduler is running" in second.stderr
    assert "Traceback" not in second.stderr
    # The first one still hears triggers and runs them.
    assert deployment.finished(deployment.trigger("solo"), timeout=30).state.value == "success"


def _trigger_many(database_url: str, wakeup_path: str, dag_id: str, count: int) -> list[str]:
    """One burst client, in its own process: its own database handle, like a real caller."""
    db = Database(database_url)
    sender = WakeupSender(Path(wakeup_path))
    try:
        runs = RunService(db, clock=SystemClock(), wakeup=sender)
        return [runs.trigger(dag_id, conf={"i": i}).run.run_id for i in range(count)]
    finally:
        sender.close()
        db.dispose()


def test_a_burst_of_triggers_from_eight_clients_all_run(deployment: Deployment) -> None:
    deployment.write_dag(
        "burst",
        """
        from datetime import datetime
        from slipstream import DAG, task, chain

        with DAG("burst", schedule=None, start_date=datetime(2024, 1, 1),
                 max_active_runs=64) as dag:
            @task
            def a(**context):
                return context["dag_run"].conf["i"]

            @task
            def b(x):
                return x + 1

            b(a())
        """,
    )
    deployment.start()
    deployment.finished(deployment.trigger("burst", {"i": -1}))  # parsed and warm
    clients, per_client = 8, 40
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        batches = pool.starmap(
            _trigger_many,
            [
                (
                    deployment.settings.database_url,
                    str(deployment.settings.wakeup_path),
                    "burst",
                    per_client,
                )
                for _ in range(clients)
            ],
        )
    run_ids = [run_id for batch in batches for run_id in batch]
    assert len(set(run_ids)) == clients * per_client
    deadline = time.monotonic() + 120
    for run_id in run_ids:
        run = deployment.runs.wait("burst", run_id, timeout=max(0.1, deadline - time.monotonic()))
        assert run.state.value == "success", (run_id, run.state, run.state_reason)
    out = (deployment.home / "scheduler.out").read_text()
    assert "locked" not in out and "ERROR" not in out, out


@pytest.mark.postgres
def test_on_postgresql_a_trigger_from_another_machine_wakes_the_scheduler_by_notify(
    pg_db: Database, tmp_path: Path
) -> None:
    """The trigger's process sends no datagram (as on another machine): only PostgreSQL's
    NOTIFY can wake the scheduler before its 5 s safety scan. Five runs one after another
    would take about 20 s on safety scans alone; woken, they take about a second."""
    d = Deployment(tmp_path / "home", pg_db.url)
    d.wakeup.close()
    notify = PgHintSender(d.db)
    d.runs = RunService(d.db, clock=SystemClock(), wakeup=notify)
    try:
        d.write_dag(
            "one",
            """
            from datetime import datetime
            from slipstream import DAG, task

            with DAG("one", schedule=None, start_date=datetime(2024, 1, 1)):
                @task
                def only():
                    return 1

                only()
            """,
        )
        d.start()
        d.finished(d.trigger("one"))  # parsed, workers warm
        began = time.monotonic()
        for _ in range(5):
            assert d.finished(d.trigger("one")).state.value == "success"
        assert time.monotonic() - began < 10, "runs waited for safety scans: no NOTIFY heard"
    finally:
        d.stop()
        d.db.dispose()
