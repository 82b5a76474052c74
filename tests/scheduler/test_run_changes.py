"""People changing runs while the scheduler works (services/run_changes.py), stepped pass by
pass on a real database: marks and clears stand against tries still in flight, the scheduler's
remembered task states are dropped on a run-changed hint, and unwanted tries are stopped."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.sql.dml import Update

from slipstream.clock import Clock
from slipstream.core.records import ExitReason, TaskEvent, TaskFinished, TaskKey, Workload
from slipstream.core.states import RunState, TaskState, run_sources, task_sources
from slipstream.errors import TaskNotFound
from slipstream.services.run_changes import RunChangeService, Selection
from slipstream.store import dags as dags_store
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness
from tests.store.test_plans import version_reads
from tests.store.test_transitions import APPLY_MODULE, compared_states

CHAIN = """
from datetime import datetime
from slipstream import DAG, task

with DAG("chain3", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def first():
        return 1

    @task
    def second(x):
        return x + 1

    @task
    def third(x):
        return x + 1

    third(second(first()))
"""

FLAKY = """
from datetime import datetime
from slipstream import DAG, task

with DAG("flaky", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task(retries=1, retry_delay=0)
    def always_fails():
        raise RuntimeError("no luck")

    @task
    def after(x):
        return x

    after(always_fails())
"""


@pytest.fixture
def changes(harness: Harness) -> RunChangeService:
    return RunChangeService(harness.db, clock=harness.clock, plans=harness.plans)


def hint(run_pk: int) -> tuple[Hint, ...]:
    return (Hint.run_changed(run_pk),)


def test_marking_a_task_whose_try_is_in_flight_is_not_overwritten_by_the_try(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("chain3", CHAIN)
    run = harness.runs.trigger("chain3").run
    # Pass 1 starts the run and hands `first` to the executor; its (successful) end has not
    # been recorded yet when a person marks it failed.
    harness.scheduler.tick([Hint.queued_run("chain3")])
    assert harness.states("chain3", run.run_id)["first"] == "queued"
    affected = changes.mark_task_instances(
        "chain3", run.run_id, "first", TaskState.FAILED, dry_run=False, by="alice"
    )
    assert [ti.task_id for ti, _ in affected.task_instances] == ["first"]
    harness.settle(hint(run.id))
    assert harness.states("chain3", run.run_id) == {
        "first": "failed",
        "second": "upstream_failed",
        "third": "upstream_failed",
    }
    assert harness.run("chain3", run.run_id).state is RunState.FAILED
    [only] = harness.tries("chain3", run.run_id, "first")
    assert only.state is TaskState.SUCCESS  # the try's own history keeps how it ended
    assert harness.tis("chain3", run.run_id)["first"].state_reason == "marked failed by alice"


def test_clearing_a_task_in_flight_runs_it_again_as_a_new_try(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("chain3", CHAIN)
    run = harness.runs.trigger("chain3").run
    harness.scheduler.tick([Hint.queued_run("chain3")])
    changes.clear_task_instances(
        "chain3", run_id=run.run_id, task_ids=["first"], only_failed=False, dry_run=False, by="bob"
    )
    harness.settle(hint(run.id))
    assert harness.run("chain3", run.run_id).state is RunState.SUCCESS
    first = harness.tis("chain3", run.run_id)["first"]
    assert (first.state, first.try_number) == (TaskState.SUCCESS, 2)
    assert [t.try_number for t in harness.tries("chain3", run.run_id, "first")] == [1, 2]


def test_clearing_a_finished_run_requeues_it_and_everything_runs_again(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("chain3", CHAIN)
    run = harness.runs.trigger("chain3").run
    harness.settle((Hint.queued_run("chain3"),))
    assert harness.run("chain3", run.run_id).state is RunState.SUCCESS
    dry = changes.clear_run("chain3", run.run_id, dry_run=True, by="carol")
    assert not isinstance(dry, type(run))
    assert harness.run("chain3", run.run_id).state is RunState.SUCCESS  # dry run: no change
    cleared = changes.clear_run("chain3", run.run_id, dry_run=False, by="carol")
    assert isinstance(cleared, type(run))
    assert cleared.state is RunState.QUEUED
    assert set(harness.states("chain3", run.run_id).values()) == {"none"}
    harness.settle(hint(run.id))
    assert harness.run("chain3", run.run_id).state is RunState.SUCCESS
    assert {t.try_number for t in harness.tis("chain3", run.run_id).values()} == {2}


def test_a_cleared_task_gets_its_retries_again(harness: Harness, changes: RunChangeService) -> None:
    harness.write_dag("flaky", FLAKY)
    run = harness.runs.trigger("flaky").run
    harness.settle((Hint.queued_run("flaky"),))
    assert harness.run("flaky", run.run_id).state is RunState.FAILED
    assert harness.tis("flaky", run.run_id)["always_fails"].try_number == 2
    changes.clear_task_instances(
        "flaky",
        run_id=run.run_id,
        task_ids=["always_fails"],
        selection=Selection(downstream=True),
        dry_run=False,
        by="dan",
    )
    ti = harness.tis("flaky", run.run_id)["always_fails"]
    assert (ti.state, ti.max_tries) == (TaskState.NONE, 3)  # tries so far + retries
    assert harness.states("flaky", run.run_id)["after"] == "none"
    harness.settle(hint(run.id))
    # Two more tries (one retry), as a fresh task would get; then the run fails again.
    assert harness.tis("flaky", run.run_id)["always_fails"].try_number == 4
    assert harness.run("flaky", run.run_id).state is RunState.FAILED


def test_mark_run_success_marks_unfinished_tasks_and_the_try_in_flight_cannot_undo_it(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("flaky", FLAKY)
    run = harness.runs.trigger("flaky").run
    # always_fails is queued, its failure not recorded
    harness.scheduler.tick([Hint.queued_run("flaky")])
    marked = changes.mark_run("flaky", run.run_id, RunState.SUCCESS, by="erin")
    assert marked.state is RunState.SUCCESS
    assert marked.state_reason == "marked success by erin"
    assert harness.states("flaky", run.run_id) == {"always_fails": "success", "after": "success"}
    harness.settle(hint(run.id))
    assert harness.states("flaky", run.run_id) == {"always_fails": "success", "after": "success"}
    assert harness.run("flaky", run.run_id).state is RunState.SUCCESS


def test_mark_run_failed_fails_running_tasks_and_skips_the_rest(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("chain3", CHAIN)
    run = harness.runs.trigger("chain3").run
    harness.scheduler.tick([Hint.queued_run("chain3")])
    harness.scheduler.tick()  # first done, second queued with its end pending
    with harness.db.write() as conn:
        # As a local executor would have reported by now: second is running.
        conn.exec_driver_sql("UPDATE task_instances SET state = 'running' WHERE task_id = 'second'")
    changes.mark_run("chain3", run.run_id, RunState.FAILED, by="fay")
    assert harness.states("chain3", run.run_id) == {
        "first": "success",
        "second": "failed",
        "third": "skipped",
    }
    harness.settle(hint(run.id))
    assert harness.run("chain3", run.run_id).state is RunState.FAILED
    assert harness.states("chain3", run.run_id)["second"] == "failed"


def test_marking_a_failed_task_success_resumes_its_run(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("flaky", FLAKY)
    run = harness.runs.trigger("flaky").run
    harness.settle((Hint.queued_run("flaky"),))
    assert harness.states("flaky", run.run_id) == {
        "always_fails": "failed",
        "after": "upstream_failed",
    }
    changes.mark_task_instances(
        "flaky", run.run_id, "always_fails", TaskState.SUCCESS, dry_run=False, by="gus"
    )
    assert harness.run("flaky", run.run_id).state is RunState.QUEUED
    harness.settle(hint(run.id))
    assert harness.states("flaky", run.run_id) == {"always_fails": "success", "after": "success"}
    assert harness.run("flaky", run.run_id).state is RunState.SUCCESS


def test_mark_run_queued_restarts_a_finished_run_with_its_tasks(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("chain3", CHAIN)
    run = harness.runs.trigger("chain3").run
    harness.settle((Hint.queued_run("chain3"),))
    requeued = changes.mark_run("chain3", run.run_id, RunState.QUEUED, by="hal")
    assert requeued.state is RunState.QUEUED and requeued.end_date is None
    harness.settle(hint(run.id))
    # Its task rows were kept (all succeeded), so it finishes at once, with no new tries.
    assert harness.run("chain3", run.run_id).state is RunState.SUCCESS
    assert {t.try_number for t in harness.tis("chain3", run.run_id).values()} == {1}


def test_deleting_a_run_with_a_try_in_flight_leaves_the_scheduler_healthy(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("chain3", CHAIN)
    run = harness.runs.trigger("chain3").run
    harness.scheduler.tick([Hint.queued_run("chain3")])
    changes.delete_run("chain3", run.run_id)
    harness.settle(hint(run.id))  # would raise if the pass failed
    other = harness.runs.trigger("chain3").run
    harness.settle((Hint.queued_run("chain3"),))
    assert harness.run("chain3", other.run_id).state is RunState.SUCCESS


class HoldingExecutor:
    """Keeps tries in flight until killed: the scheduler's side of stopping one."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.held: list[Workload] = []
        self.killed: list[TaskKey] = []
        self._events: list[TaskEvent] = []

    @property
    def capacity(self) -> int:
        return 8

    def start(self) -> None:
        """Nothing to start."""

    def submit(self, workloads: Sequence[Workload]) -> None:
        self.held.extend(workloads)

    def events(self) -> list[TaskEvent]:
        events, self._events = self._events, []
        return events

    def filenos(self) -> list[int]:
        return []

    def shutdown(self, *, graceful: bool = True) -> None:
        """Nothing runs."""

    def kill(self, keys: Sequence[TaskKey]) -> None:
        self.killed.extend(keys)
        for key in keys:
            self._events.append(
                TaskFinished(key, TaskState.FAILED, ExitReason.MARKED, self._clock.now(), "stop")
            )


@pytest.mark.parametrize("change", ["mark", "clear"])
def test_a_try_whose_task_was_marked_or_cleared_is_stopped(
    harness: Harness, changes: RunChangeService, change: str
) -> None:
    harness.write_dag("chain3", CHAIN)
    executor = HoldingExecutor(harness.clock)
    harness.executor = executor  # type: ignore[assignment]
    harness.scheduler.stop()
    harness.scheduler = harness.new_scheduler()
    harness.scheduler.start()
    run = harness.runs.trigger("chain3").run
    harness.scheduler.tick([Hint.queued_run("chain3")])
    [held] = executor.held
    if change == "mark":
        changes.mark_task_instances(
            "chain3", run.run_id, "first", TaskState.SUCCESS, dry_run=False, by="ivy"
        )
    else:
        changes.clear_task_instances(
            "chain3",
            run_id=run.run_id,
            task_ids=["first"],
            only_failed=False,
            dry_run=False,
            by="ivy",
        )
    harness.scheduler.tick(hint(run.id))
    assert executor.killed == [held.key]
    harness.scheduler.tick()  # the stopped try's report changes nothing
    first = harness.tis("chain3", run.run_id)["first"]
    if change == "mark":
        assert first.state is TaskState.SUCCESS
        assert harness.states("chain3", run.run_id)["second"] == "queued"
    else:
        assert (first.state, first.try_number) == (TaskState.QUEUED, 2)


SHIFTING_V1 = """
from datetime import datetime
from slipstream import DAG, task

with DAG("shifting", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def a():
        return 1

    @task(retries=1)
    def b(x):
        return x

    @task
    def c(x):
        return x

    c(b(a()))
"""

# The next version: `b` no longer hangs below `a`, has more retries, and `d` is new.
SHIFTING_V2 = """
from datetime import datetime
from slipstream import DAG, task

with DAG("shifting", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def a():
        return 1

    @task(retries=4)
    def b():
        return 2

    @task
    def c(x):
        return x

    @task
    def d(x):
        return x

    c(a())
    d(a())
    b()
"""


SHIFTING_WITHOUT_B = """
from datetime import datetime
from slipstream import DAG, task

with DAG("shifting", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def a():
        return 1

    @task
    def c(x):
        return x

    c(a())
"""


def test_clearing_follows_the_shape_and_retries_of_the_version_the_run_is_pinned_to(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("shifting", SHIFTING_V1)
    run = harness.runs.trigger("shifting").run
    harness.settle((Hint.queued_run("shifting"),))
    assert harness.run("shifting", run.run_id).state is RunState.SUCCESS
    harness.write_dag("shifting", SHIFTING_V2)
    harness.settle((Hint.dag_changed("shifting"),))
    affected = changes.clear_task_instances(
        "shifting",
        run_id=run.run_id,
        task_ids=["a"],
        selection=Selection(downstream=True),
        only_failed=False,
        dry_run=False,
        by="hana",
    )
    # Downstream of `a` in the run's version is b and c; in the DAG's current one, c and d.
    assert sorted(ti.task_id for ti, _ in affected.task_instances) == ["a", "b", "c"]
    tis = harness.tis("shifting", run.run_id)
    assert {t: ti.state for t, ti in tis.items()} == dict.fromkeys("abc", TaskState.NONE)
    assert tis["b"].max_tries == 1 + 1  # its try so far, plus the pinned version's retries
    harness.settle(hint(run.id))
    assert harness.run("shifting", run.run_id).state is RunState.SUCCESS
    assert {t: ti.try_number for t, ti in harness.tis("shifting", run.run_id).items()} == {
        "a": 2,
        "b": 2,
        "c": 2,
    }


def test_marking_follows_the_shape_of_the_version_the_run_is_pinned_to(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("shifting", SHIFTING_V1)
    run = harness.runs.trigger("shifting").run
    harness.settle((Hint.queued_run("shifting"),))
    harness.write_dag("shifting", SHIFTING_V2)
    dry = changes.mark_task_instances(
        "shifting",
        run.run_id,
        "a",
        TaskState.FAILED,
        selection=Selection(downstream=True),
        dry_run=True,
        by="ivan",
    )
    assert sorted(ti.task_id for ti, _ in dry.task_instances) == ["a", "b", "c"]


def test_a_task_only_the_run_s_version_has_can_still_be_cleared(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("shifting", SHIFTING_V1)
    run = harness.runs.trigger("shifting").run
    harness.settle((Hint.queued_run("shifting"),))
    harness.write_dag("shifting", SHIFTING_WITHOUT_B)
    with harness.db.read() as conn:
        current = dags_store.get_dag(conn, "shifting")
    assert current is not None and current.version_id != run.version_id
    cleared = changes.clear_task_instances(
        "shifting", run_id=run.run_id, task_ids=["b"], only_failed=False, dry_run=True, by="jo"
    )
    assert [ti.task_id for ti, _ in cleared.task_instances] == ["b"]
    with pytest.raises(TaskNotFound):
        changes.clear_task_instances(
            "shifting", run_id=run.run_id, task_ids=["zz"], dry_run=True, by="jo"
        )


def test_every_state_written_while_people_and_the_scheduler_change_runs_goes_through_the_table(
    harness: Harness, changes: RunChangeService
) -> None:
    """The runtime side of store/transitions' structural check: every UPDATE that sets the
    state of a task instance or a run comes from the apply module and accepts only states
    the table allows the move from."""
    writes: list[tuple[str, str, frozenset[str]]] = []
    bypasses: list[str] = []

    def check(conn: Any, statement: Any, *_args: Any) -> None:
        if not isinstance(statement, Update) or statement.table.name not in (
            "task_instances",
            "runs",
        ):
            return
        if "state" not in statement.compile().params:
            return  # notes, heartbeats of tries, touches: no state change
        frame = inspect.currentframe()
        callers = set()
        while frame is not None:
            callers.add(Path(frame.f_code.co_filename))
            frame = frame.f_back
        if APPLY_MODULE not in callers:
            bypasses.append(str(statement))
        target, accepted = compared_states(statement)
        legal = (
            task_sources(TaskState(target), forced=True)
            if statement.table.name == "task_instances"
            else run_sources(RunState(target), forced=True)
        )
        if not accepted <= {s.value for s in legal}:
            bypasses.append(f"{statement} accepts {accepted}")
        writes.append((statement.table.name, target, frozenset(accepted)))

    event.listen(harness.db.engine, "before_execute", check)
    try:
        harness.write_dag("flaky", FLAKY)
        harness.write_dag("chain3", CHAIN)
        flaky = harness.runs.trigger("flaky").run
        harness.settle((Hint.queued_run("flaky"),))
        changes.clear_task_instances(
            "flaky", run_id=flaky.run_id, only_failed=True, dry_run=False, by="kim"
        )
        harness.settle(hint(flaky.id))
        chain = harness.runs.trigger("chain3").run
        harness.scheduler.tick([Hint.queued_run("chain3")])
        changes.mark_run("chain3", chain.run_id, RunState.FAILED, by="kim")
        changes.mark_task_instances(
            "flaky", flaky.run_id, "always_fails", TaskState.SUCCESS, dry_run=False, by="kim"
        )
        harness.settle(hint(chain.id) + hint(flaky.id))
    finally:
        event.remove(harness.db.engine, "before_execute", check)
    assert bypasses == []
    targets = {(table, target) for table, target, _ in writes}
    task_targets = {t for table, t in targets if table == "task_instances"}
    # (No "running": the inline executor reports each start with its end, and both are
    # written in one statement; test_transitions walks the start's compare-and-set.)
    assert task_targets >= {
        "none",
        "scheduled",
        "queued",
        "success",
        "failed",
        "up_for_retry",
        "upstream_failed",
        "skipped",
    }
    assert {t for table, t in targets if table == "runs"} == {
        "queued",
        "running",
        "success",
        "failed",
    }


def test_the_scheduler_and_the_services_share_one_plan_cache(
    harness: Harness, changes: RunChangeService
) -> None:
    harness.write_dag("chain3", CHAIN)
    run = harness.runs.trigger("chain3").run
    harness.settle((Hint.queued_run("chain3"),))
    assert run.version_id in harness.plans
    reads = version_reads(harness.db)
    changes.clear_run("chain3", run.run_id, dry_run=False, by="lee")
    harness.settle(hint(run.id))
    harness.runs.trigger("chain3")
    assert harness.run("chain3", run.run_id).state is RunState.SUCCESS
    assert reads == []  # the version was decoded once, by whichever came first
