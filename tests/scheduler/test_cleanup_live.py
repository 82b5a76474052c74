"""Pruning beside a real scheduler process (local executor, real workers), on SQLite and
PostgreSQL: `db clean` in batches of one while a run is still going, and the retention job
inside the scheduler's own loop; scheduling carries on through both."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from slipstream.cli.main import cli
from slipstream.core.records import Run
from tests.scheduler.test_loop import Deployment, deployment, wait_for

__all__ = ["deployment"]

pytestmark = pytest.mark.slow

DAGS = """
from datetime import datetime
from pathlib import Path
from slipstream import DAG, task

with DAG("quick", schedule=None, start_date=datetime(2024, 1, 1)):
    @task
    def first():
        print("first")
        return 1

    @task
    def second(x):
        return x + 1

    second(first())

with DAG("slow", schedule=None, start_date=datetime(2024, 1, 1)):
    @task
    def hold(**context):
        gate = Path(context["dag_run"].conf["gate"])
        while not gate.exists():
            import time
            time.sleep(0.02)

    hold()
"""


def run_ids(d: Deployment, dag_id: str) -> list[str]:
    return [run.run_id for run in d.runs.list_runs(dag_id, limit=None)[0]]


def log_folder(d: Deployment, run: Run) -> bool:
    return (d.settings.log_folder / run.dag_id / run.run_id).is_dir()


def test_db_clean_beside_a_running_scheduler(deployment: Deployment) -> None:
    d = deployment
    d.write_dag("both", DAGS)
    d.start()
    gate = d.home / "gate"
    held = d.trigger("slow", {"gate": str(gate)})
    done = [d.finished(d.trigger("quick")) for _ in range(4)]
    wait_for(lambda: d.runs.get("slow", held.run_id).state.value == "running", 30, "slow to run")
    assert all(log_folder(d, run) for run in done)

    cutoff = datetime.now(UTC).isoformat()
    result = CliRunner().invoke(
        cli,
        [
            *("db", "clean", "--clean-before-timestamp", cutoff, "--tables", "dag_run,xcom,log"),
            *("--batch-size", "1", "--skip-archive", "-y"),
        ],
        env=d.env,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "dag_run (runs): 4 rows deleted in 4 batches" in result.output
    assert run_ids(d, "quick") == []
    assert not any(log_folder(d, run) for run in done)
    assert run_ids(d, "slow") == [held.run_id]  # still running: kept

    # Scheduling carries on: the held run ends, and a new one runs through.
    gate.touch()
    assert d.finished(held).state.value == "success"
    after = d.finished(d.trigger("quick"))
    assert after.state.value == "success"
    assert log_folder(d, after)


def test_the_retention_job_prunes_inside_the_scheduler(deployment: Deployment) -> None:
    d = deployment
    # Six seconds of runs (the job looks once a second): long enough for a run to finish and
    # be seen finished before it ages out, even on a busy machine.
    d.env["SLIPSTREAM_RETENTION_DAYS"] = str(6 / 86400)
    d.write_dag("both", DAGS)
    d.start()
    runs = [d.finished(d.trigger("quick")) for _ in range(2)]
    assert all(run.state.value == "success" for run in runs)
    assert all(log_folder(d, run) for run in runs)
    # The log files go just after the rows (once their transaction is committed).
    wait_for(
        lambda: run_ids(d, "quick") == [] and not any(log_folder(d, run) for run in runs),
        60,
        "the retention job to prune the runs and their logs",
    )
    # Scheduling carried on: a run triggered now runs as any other.
    later = d.finished(d.trigger("quick"))
    assert later.state.value == "success"
    assert run_ids(d, "quick") == [later.run_id]
