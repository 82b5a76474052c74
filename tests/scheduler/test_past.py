"""depends_on_past and wait_for_downstream through the scheduler (inline executor, frozen
clock): a task waits while its previous run's instance has not succeeded, and goes once a
person clears or marks that instance."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipstream.core.states import RunState, TaskState
from slipstream.services.run_changes import RunChangeService
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness

DEPENDS = """
    from datetime import datetime
    from pathlib import Path
    from slipstream import DAG
    from slipstream.authoring.operators import PythonOperator

    FLAG = Path({flag!r})

    def work():
        if FLAG.exists():
            raise RuntimeError("the flag says fail")

    with DAG("past", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        flaky = PythonOperator(task_id="flaky", python_callable=work, depends_on_past=True)
        after = PythonOperator(task_id="after", python_callable=print)
        flaky >> after
"""

WAITS = """
    from datetime import datetime
    from pathlib import Path
    from slipstream import DAG
    from slipstream.authoring.operators import PythonOperator

    FLAG = Path({flag!r})

    def work():
        if FLAG.exists():
            raise RuntimeError("the flag says fail")

    with DAG("waits", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        head = PythonOperator(task_id="head", python_callable=print, wait_for_downstream=True)
        tail = PythonOperator(task_id="tail", python_callable=work)
        head >> tail
"""


@pytest.fixture
def changes(harness: Harness) -> RunChangeService:
    return RunChangeService(harness.db, clock=harness.clock, plans=harness.plans)


def test_a_failure_holds_the_next_run_until_the_failed_instance_is_cleared(
    harness: Harness, changes: RunChangeService, tmp_path: Path
) -> None:
    flag = tmp_path / "fail"
    harness.write_dag("past", DEPENDS.format(flag=str(flag)))
    flag.touch()
    first = harness.runs.trigger("past").run
    harness.settle((Hint.queued_run("past"),))
    assert harness.run("past", first.run_id).state is RunState.FAILED
    flag.unlink()

    harness.clock.advance(60)
    second = harness.runs.trigger("past").run
    harness.settle((Hint.queued_run("past"),))
    # The previous run's `flaky` failed: this one waits, neither run nor failed.
    assert harness.states("past", second.run_id) == {"flaky": "none", "after": "none"}
    assert harness.run("past", second.run_id).state is RunState.RUNNING

    changes.clear_task_instances(
        "past", run_id=first.run_id, task_ids=["flaky"], dry_run=False, by="ops"
    )
    harness.settle((Hint.run_changed(first.id),))
    assert harness.states("past", first.run_id)["flaky"] == "success"
    assert harness.run("past", second.run_id).state is RunState.SUCCESS
    assert harness.states("past", second.run_id) == {"flaky": "success", "after": "success"}


def test_the_first_run_and_a_run_after_success_are_not_held(
    harness: Harness, tmp_path: Path
) -> None:
    harness.write_dag("past", DEPENDS.format(flag=str(tmp_path / "never")))
    for _ in range(2):
        run = harness.runs.trigger("past").run
        harness.settle((Hint.queued_run("past"),))
        assert harness.run("past", run.run_id).state is RunState.SUCCESS
        harness.clock.advance(60)


def test_wait_for_downstream_holds_until_the_previous_downstream_is_done(
    harness: Harness, changes: RunChangeService, tmp_path: Path
) -> None:
    flag = tmp_path / "fail"
    harness.write_dag("waits", WAITS.format(flag=str(flag)))
    flag.touch()
    first = harness.runs.trigger("waits").run
    harness.settle((Hint.queued_run("waits"),))
    assert harness.states("waits", first.run_id) == {"head": "success", "tail": "failed"}

    harness.clock.advance(60)
    second = harness.runs.trigger("waits").run
    harness.settle((Hint.queued_run("waits"),))
    # `head` itself succeeded before, but its downstream did not.
    assert harness.states("waits", second.run_id)["head"] == "none"

    changes.mark_task_instances(
        "waits", first.run_id, "tail", TaskState.SUCCESS, dry_run=False, by="ops"
    )
    harness.settle((Hint.run_changed(first.id),))
    assert harness.states("waits", second.run_id)["head"] == "success"


MAPPED = """
    from datetime import datetime
    from pathlib import Path
    from slipstream import DAG, task

    FLAG = Path({flag!r})
    SIZE = Path({size!r})

    with DAG("mapped_past", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        @task
        def items():
            return list(range(int(SIZE.read_text())))

        @task(depends_on_past=True)
        def each(x):
            if x == 1 and FLAG.exists():
                raise RuntimeError("the flag says fail")
            return x

        each.expand(x=items())
"""


def instances(harness: Harness, run_id: str) -> dict[tuple[str, int], str]:
    return {
        (t.task_id, t.map_index): t.state.value
        for t in harness.runs.task_instances("mapped_past", run_id)
    }


def test_a_mapped_task_waits_for_every_instance_of_the_previous_run(
    harness: Harness, changes: RunChangeService, tmp_path: Path
) -> None:
    flag, size = tmp_path / "fail", tmp_path / "size"
    harness.write_dag("mapped_past", MAPPED.format(flag=str(flag), size=str(size)))
    flag.touch()
    size.write_text("3")
    first = harness.runs.trigger("mapped_past").run
    harness.settle((Hint.queued_run("mapped_past"),))
    assert instances(harness, first.run_id)[("each", 1)] == "failed"
    assert harness.run("mapped_past", first.run_id).state is RunState.FAILED

    flag.unlink()
    size.write_text("4")  # this run maps over more items than the previous one had
    harness.clock.advance(60)
    second = harness.runs.trigger("mapped_past").run
    harness.settle((Hint.queued_run("mapped_past"),))
    # Its upstream succeeded, but the previous run's `each` did not: it is not even expanded.
    assert instances(harness, second.run_id) == {("items", -1): "success", ("each", -1): "none"}
    assert harness.run("mapped_past", second.run_id).state is RunState.RUNNING

    changes.clear_task_instances(
        "mapped_past",
        run_id=first.run_id,
        task_ids=["each"],
        map_indexes={"each": {1}},
        dry_run=False,
        by="ops",
    )
    harness.settle((Hint.run_changed(first.id),))
    assert harness.run("mapped_past", first.run_id).state is RunState.SUCCESS
    # Every instance goes, index 3 too, which the previous run never had.
    assert instances(harness, second.run_id) == {
        ("items", -1): "success",
        **{("each", i): "success" for i in range(4)},
    }
    assert harness.run("mapped_past", second.run_id).state is RunState.SUCCESS

    # A cleared instance waits on the previous run again: run 1's index 1 fails once more...
    flag.touch()
    changes.clear_task_instances(
        "mapped_past",
        run_id=first.run_id,
        task_ids=["each"],
        map_indexes={"each": {1}},
        only_failed=False,
        dry_run=False,
        by="ops",
    )
    harness.settle((Hint.run_changed(first.id),))
    assert instances(harness, first.run_id)[("each", 1)] == "failed"
    # ...so clearing run 2's index 0 leaves it waiting, without a state.
    changes.clear_task_instances(
        "mapped_past",
        run_id=second.run_id,
        task_ids=["each"],
        map_indexes={"each": {0}},
        only_failed=False,
        dry_run=False,
        by="ops",
    )
    harness.settle((Hint.run_changed(second.id),))
    assert instances(harness, second.run_id)[("each", 0)] == "none"
    assert harness.run("mapped_past", second.run_id).state is RunState.RUNNING

    flag.unlink()
    changes.mark_task_instances(
        "mapped_past",
        first.run_id,
        "each",
        TaskState.SUCCESS,
        map_indexes=[1],
        dry_run=False,
        by="ops",
    )
    harness.settle((Hint.run_changed(first.id),))
    assert instances(harness, second.run_id)[("each", 0)] == "success"
    assert harness.run("mapped_past", second.run_id).state is RunState.SUCCESS
