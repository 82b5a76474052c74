"""services.changes (and store.changes beneath it) on real SQLite and PostgreSQL, with a real
scheduler stepping passes: a change feed reports each run whose rows were written since its
last poll, once; a person's change to a finished run's task; nothing when nothing changed;
and rows that left the window are forgotten."""

from __future__ import annotations

from datetime import timedelta

from slipstream.core.states import TaskState
from slipstream.services.changes import ChangeService
from slipstream.services.run_changes import RunChangeService
from tests.scheduler.conftest import Harness, harness

__all__ = ["harness"]  # the scheduler tests' fixture: a real scheduler, stepped

CHAIN = """
from datetime import datetime
from slipstream import DAG, task

with DAG("chain", schedule=None, start_date=datetime(2024, 1, 1), tags=["team-a"]):
    @task
    def first():
        return 1

    @task
    def second(x):
        return x + 1

    second(first())
"""

OTHER = """
from datetime import datetime
from slipstream import DAG, task

with DAG("other", schedule=None, start_date=datetime(2024, 1, 1)):
    @task
    def only():
        return 1

    only()
"""


def runs_of(changes: list[object]) -> set[tuple[str, str]]:
    return {(c.dag_id, c.run_id) for c in changes}  # type: ignore[attr-defined]


def test_a_feed_reports_each_changed_run_once(harness: Harness) -> None:
    harness.write_dag("chain", CHAIN)
    harness.write_dag("other", OTHER)
    service = ChangeService(harness.db, clock=harness.clock)
    assert service.feed().poll() == []
    run = harness.runs.trigger("chain").run
    harness.clock.advance(2)
    feed = service.feed()
    first = feed.poll()
    assert runs_of(first) == {("chain", run.run_id)}
    assert first[0].dag_tags == ("team-a",)
    # A feed's first poll dates a change by its row (what a page rendered since shows).
    assert first[0].seen_at == run.queued_at == harness.clock.now() - timedelta(seconds=2)
    assert feed.poll() == []  # seen already

    harness.clock.advance(0.5)
    harness.scheduler.tick(())  # the run starts: its row and its task instances are written
    assert runs_of(feed.poll()) == {("chain", run.run_id)}
    assert feed.poll() == []
    harness.clock.advance(0.5)
    harness.settle()
    changes = feed.poll()
    assert runs_of(changes) == {("chain", run.run_id)}
    assert changes[0].seen_at == harness.clock.now()
    assert harness.run("chain", run.run_id).state.value == "success"
    assert feed.poll() == []

    other = harness.runs.trigger("other").run
    assert runs_of(feed.poll()) == {("other", other.run_id)}


def test_a_persons_change_to_a_finished_run_is_reported(harness: Harness) -> None:
    harness.write_dag("chain", CHAIN)
    run = harness.runs.trigger("chain").run
    harness.settle()
    feed = ChangeService(harness.db, clock=harness.clock).feed()
    feed.poll()
    harness.clock.advance(1)
    changes = RunChangeService(harness.db, clock=harness.clock, plans=harness.plans)
    changes.mark_task_instances(
        "chain", run.run_id, "second", TaskState.FAILED, dry_run=False, by="ada"
    )
    assert runs_of(feed.poll()) == {("chain", run.run_id)}


def test_rows_out_of_the_window_are_neither_reported_nor_kept(harness: Harness) -> None:
    harness.write_dag("chain", CHAIN)
    service = ChangeService(harness.db, clock=harness.clock, window=5)
    feed = service.feed()
    run = harness.runs.trigger("chain").run
    assert runs_of(feed.poll()) == {("chain", run.run_id)}
    harness.clock.advance(timedelta(seconds=6))
    assert feed.poll() == []
    assert feed._seen == {}  # forgotten once out of the window
    # A new feed over an old change: nothing (a page rendered since shows it).
    assert service.feed().poll() == []
