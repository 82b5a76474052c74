"""Task groups and setup/teardown tasks through the scheduler, pass by pass (inline executor,
real database, DAG files parsed in child processes), and a clear that reaches setups and
teardowns as Airflow's does."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipstream.core.states import RunState
from slipstream.services.run_changes import RunChangeService, Selection
from slipstream.store import xcoms as xcom_store
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness

GROUPED = """
from datetime import datetime
from slipstream import DAG, TaskGroup, task, task_group, EmptyOperator, Label

with DAG("grouped", schedule=None, start_date=datetime(2024, 1, 1),
         default_args={"retries": 0}) as dag:
    start = EmptyOperator(task_id="start")

    @task
    def number():
        return 2

    @task
    def times(x, by):
        return x * by

    @task_group(default_args={"retries": 1})
    def scale(x):
        return times(times(x, 3), 5)

    with TaskGroup("extract") as extract:
        @task
        def pull():
            return 7
        pull()

    @task
    def total(a, b):
        return a + b

    result = total(scale(number()), extract.children["extract.pull"].output)
    start >> Label("begin") >> [extract, number.override(task_id="unused")()]
"""

TEARDOWN = """
from datetime import datetime
from pathlib import Path
from slipstream import DAG, task, setup, teardown

MARKS = Path({marks!r})

with DAG("cluster", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @setup
    def create():
        (MARKS / "created").write_text("x")

    @task
    def work():
        if (MARKS / "fail").exists():
            raise RuntimeError("the work broke")

    @task
    def report():
        return "done"

    @teardown
    def delete():
        with (MARKS / "deleted").open("a") as f:
            f.write("x")
        if (MARKS / "fail_teardown").exists():
            raise RuntimeError("could not delete")

    with delete().as_teardown(setups=create()):
        work() >> report()
"""


def run_to_end(harness: Harness, dag_id: str) -> tuple[RunState, dict[str, str], str]:
    run = harness.runs.trigger(dag_id).run
    harness.settle((Hint.queued_run(dag_id),))
    return harness.run(dag_id, run.run_id).state, harness.states(dag_id, run.run_id), run.run_id


def test_a_dag_of_groups_runs_with_prefixed_ids_and_group_defaults(harness: Harness) -> None:
    harness.write_dag("grouped", GROUPED)
    state, states, run_id = run_to_end(harness, "grouped")
    assert state is RunState.SUCCESS
    assert set(states) == {
        "start",
        "extract.pull",
        "number",
        "unused",
        "scale.times",
        "scale.times__1",
        "total",
    }
    assert set(states.values()) == {"success"}
    tis = harness.tis("grouped", run_id)
    assert tis["scale.times"].max_tries == 1 and tis["total"].max_tries == 0
    # 2 * 3 * 5 + 7
    with harness.db.read() as conn:
        run = harness.run("grouped", run_id)
        pulled = xcom_store.pull(conn, run.id, ["total"], "return_value")
    assert pulled == {"total": "37"}


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    return folder


def test_the_teardown_cleans_up_after_failed_work_and_the_work_fails_the_run(
    harness: Harness, marks: Path
) -> None:
    (marks / "fail").write_text("x")
    harness.write_dag("cluster", TEARDOWN.format(marks=str(marks)))
    state, states, _ = run_to_end(harness, "cluster")
    assert states == {
        "create": "success",
        "work": "failed",
        "report": "upstream_failed",
        "delete": "success",
    }
    assert state is RunState.FAILED
    assert (marks / "deleted").read_text() == "x"


def test_a_failing_teardown_does_not_fail_the_run(harness: Harness, marks: Path) -> None:
    (marks / "fail_teardown").write_text("x")
    harness.write_dag("cluster", TEARDOWN.format(marks=str(marks)))
    state, states, _ = run_to_end(harness, "cluster")
    assert states == {
        "create": "success",
        "work": "success",
        "report": "success",
        "delete": "failed",
    }
    assert state is RunState.SUCCESS


def test_clearing_work_runs_its_setup_and_teardown_again(harness: Harness, marks: Path) -> None:
    (marks / "fail").write_text("x")
    harness.write_dag("cluster", TEARDOWN.format(marks=str(marks)))
    state, _, run_id = run_to_end(harness, "cluster")
    assert state is RunState.FAILED
    (marks / "fail").unlink()
    changes = RunChangeService(harness.db, clock=harness.clock, plans=harness.plans)
    # Only the work is named; its setup and teardown come with it.
    affected = changes.clear_task_instances(
        "cluster",
        run_id=run_id,
        task_ids=["work"],
        only_failed=False,
        dry_run=False,
        by="ann",
        selection=Selection(downstream=True),
    )
    assert sorted(ti.task_id for ti, _ in affected.task_instances) == [
        "create",
        "delete",
        "report",
        "work",
    ]
    dry = changes.clear_task_instances(
        "cluster", run_id=run_id, task_ids=["work"], only_failed=False, dry_run=True, by="ann"
    )
    assert sorted(ti.task_id for ti, _ in dry.task_instances) == ["create", "delete", "work"]
    run = harness.run("cluster", run_id)
    harness.settle((Hint.run_changed(run.id),))
    assert harness.run("cluster", run_id).state is RunState.SUCCESS
    tis = harness.tis("cluster", run_id)
    assert {t: ti.try_number for t, ti in tis.items()} == {
        "create": 2,
        "work": 2,
        "report": 1,
        "delete": 2,
    }
    assert (marks / "deleted").read_text() == "xx"
