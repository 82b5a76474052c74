"""A real scheduler on PostgreSQL whose database goes away under it: connections the server
ended are replaced; while the database refuses connections the scheduler says so once (no
traceback a pass) and carries on when it answers, finishing the run it was in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PG_SERVER, PgTemplate, drop_pg_database, pg_url
from tests.scheduler.test_loop import Deployment, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class Database:
    """The admin's view of one test database."""

    def __init__(self, name: str) -> None:
        self.name = name

    def end_connections(self) -> None:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )

    def allow_connections(self, allowed: bool) -> None:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS {str(allowed).lower()}')


@pytest.fixture
def database(pg_template: PgTemplate) -> Iterator[Database]:
    database = Database(pg_template.create())
    try:
        yield database
    finally:
        database.allow_connections(True)
        drop_pg_database(database.name)


@pytest.fixture
def deployment(database: Database, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path / "home", pg_url(database.name))
    yield d
    d.stop()
    d.wakeup.close()
    d.db.dispose()


def gated_dag(deployment: Deployment, gate: Path) -> None:
    deployment.write_dag(
        "gated",
        f"""
        from datetime import datetime
        from pathlib import Path
        import time
        from slipstream import DAG, task

        with DAG("gated", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            @task
            def wait_for_gate():
                Path({str(gate)!r} + ".started").write_text("1")
                while not Path({str(gate)!r}).exists():
                    time.sleep(0.05)
                return 1

            @task
            def after(x):
                return x + 1

            after(wait_for_gate())
        """,
    )


def scheduler_log(deployment: Deployment) -> str:
    return (deployment.home / "scheduler.out").read_text()


def test_connections_ended_under_a_running_scheduler_are_replaced(
    deployment: Deployment, database: Database, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gated_dag(deployment, gate)
    deployment.start()
    run = deployment.trigger("gated")
    wait_for(lambda: Path(f"{gate}.started").exists(), 30, "the first task to start")
    database.end_connections()
    gate.write_text("open")
    assert deployment.finished(run, timeout=30).state.value == "success"
    database.end_connections()
    assert deployment.finished(deployment.trigger("gated"), timeout=30).state.value == "success"
    assert "Traceback" not in scheduler_log(deployment), scheduler_log(deployment)


def test_an_outage_is_one_warning_and_the_run_finishes_after_it(
    deployment: Deployment, database: Database, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gated_dag(deployment, gate)
    deployment.start()
    run = deployment.trigger("gated")
    wait_for(lambda: Path(f"{gate}.started").exists(), 30, "the first task to start")
    database.allow_connections(False)
    database.end_connections()
    # The try finishes during the outage: its outcome waits in the scheduler's memory. The
    # outage outlasts SLIPSTREAM_LOST_AFTER_SECONDS (3), so nothing may be judged lost for it.
    gate.write_text("open")
    time.sleep(4)
    assert deployment.process is not None and deployment.process.poll() is None
    database.allow_connections(True)
    done = deployment.finished(run, timeout=30)
    assert done.state.value == "success"
    tries = deployment.runs.tries("gated", run.run_id, "wait_for_gate")
    assert len(tries) == 1, tries
    log = scheduler_log(deployment)
    assert "Traceback" not in log, log
    assert log.count("cannot connect to") == 1, log
    assert log.count("the metadata database answers again") == 1, log
    # The hint session (LISTEN) says it lost the database once too, not every second.
    assert log.count("cannot listen for hints") + log.count("lost the hint session") <= 1, log


def test_a_retry_waiting_through_an_outage_still_runs(
    deployment: Deployment, database: Database, tmp_path: Path
) -> None:
    # The scheduler's memory (the retry's timer here) is read back once the database answers:
    # a pass that failed for the outage could not, and an empty memory would never retry.
    marker = tmp_path / "failed-once"
    deployment.write_dag(
        "flaky",
        f"""
        from datetime import datetime, timedelta
        from pathlib import Path
        from slipstream import DAG, task

        with DAG("flaky", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            @task(retries=1, retry_delay=timedelta(seconds=3))
            def flaky():
                marker = Path({str(marker)!r})
                if not marker.exists():
                    marker.write_text("1")
                    raise RuntimeError("first try fails")
                return 1

            flaky()
        """,
    )
    deployment.start()
    run = deployment.trigger("flaky")

    def waiting_to_retry() -> bool:
        states = [t.state.value for t in deployment.runs.task_instances("flaky", run.run_id)]
        return states == ["up_for_retry"]

    wait_for(waiting_to_retry, 30, "the first try to fail")
    database.allow_connections(False)
    database.end_connections()
    time.sleep(1.5)
    database.allow_connections(True)
    assert deployment.finished(run, timeout=30).state.value == "success"
    assert len(deployment.runs.tries("flaky", run.run_id, "flaky")) == 2
    assert "Traceback" not in scheduler_log(deployment), scheduler_log(deployment)
