"""Pools as resources end to end: the real scheduler and local executor's workers on SQLite and
PostgreSQL. A pool bounds how many tries run at once (checked from the tries' recorded start and
end times), a resize takes effect at the next pass, and a task naming a missing pool, or
needing more slots than its pool has, fails at once saying why."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slipstream.clock import SystemClock
from slipstream.core.pools import Pool
from slipstream.core.states import RunState, TaskState
from slipstream.services.event_log import EventLogService
from slipstream.services.pools import PoolService
from slipstream.store.db import Database
from slipstream.wakeup import Hint
from tests.scheduler.test_arguments_live import Live

pytestmark = pytest.mark.slow

SLEEPERS = """
import time
from datetime import datetime
from slipstream import DAG
from slipstream.authoring.operators import PythonOperator

def nap(seconds):
    time.sleep(seconds)

with DAG({dag_id!r}, schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=16) as dag:
    for i in range({count}):
        PythonOperator(task_id=f"t{{i}}", python_callable=nap, op_args=[{seconds}],
                       pool={pool!r}, pool_slots={slots})
"""


@pytest.fixture
def live(db: Database, tmp_path: Path) -> Iterator[Callable[..., Live]]:
    made: list[Live] = []

    def make(**kwargs: object) -> Live:
        made_live = Live(db, tmp_path / "home", **kwargs)  # type: ignore[arg-type]
        made_live.executor.start()
        made_live.scheduler.start()
        made.append(made_live)
        return made_live

    yield make
    for one in made:
        one.scheduler.stop()


def most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    """The most spans open at one instant (an end before a start at the same instant)."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def spans(live: Live, dag_id: str, run_id: str, tasks: int) -> list[tuple[datetime, datetime]]:
    found = []
    for i in range(tasks):
        (attempt,) = live.runs.tries(dag_id, run_id, f"t{i}")
        assert attempt.start_date is not None and attempt.end_date is not None
        found.append((attempt.start_date, attempt.end_date))
    return found


def test_a_pool_of_two_runs_two_at_a_time(live: Callable[..., Live], db: Database) -> None:
    runner = live(parallelism=8, workers=2)
    PoolService(db, clock=SystemClock()).create(Pool("two", 2, "two slots"), by="test")
    runner.write_dag(
        "pooled", SLEEPERS.format(dag_id="pooled", count=5, seconds=0.4, pool="two", slots=1)
    )
    run = runner.runs.trigger("pooled").run
    runner.drive(runner.finished("pooled", run.run_id))
    assert runner.run_state("pooled", run.run_id) is RunState.SUCCESS
    # Five tries of 0.4 s, eight executor slots: only the pool keeps them to two at a time.
    assert most_at_once(spans(runner, "pooled", run.run_id, 5)) == 2


def test_a_resize_takes_effect_at_the_next_pass(live: Callable[..., Live], db: Database) -> None:
    runner = live(parallelism=8, workers=2)
    pools = PoolService(db, clock=SystemClock())
    pools.create(Pool("narrow", 1), by="test")
    runner.write_dag(
        "resized", SLEEPERS.format(dag_id="resized", count=3, seconds=2.0, pool="narrow", slots=1)
    )
    run = runner.runs.trigger("resized").run

    def started() -> dict[str, int]:
        states = list(runner.states("resized", run.run_id).values())
        return {s: states.count(s) for s in ("queued", "running", "scheduled")}

    runner.drive(lambda: started()["queued"] + started()["running"] == 1)
    assert started()["scheduled"] == 2  # held by the pool, not by anything else
    assert pools.get("narrow").queued + pools.get("narrow").running == 1
    pools.update("narrow", {"slots": 3}, by="test")
    runner.scheduler.tick([Hint.pools_changed()])
    assert started()["scheduled"] == 0  # the very next pass queued the other two
    runner.drive(runner.finished("resized", run.run_id))
    assert runner.run_state("resized", run.run_id) is RunState.SUCCESS
    assert pools.get("narrow").occupied == 0


def test_a_missing_pool_fails_the_task_saying_why(live: Callable[..., Live], db: Database) -> None:
    runner = live()
    runner.write_dag(
        "lost", SLEEPERS.format(dag_id="lost", count=1, seconds=0, pool="nowhere", slots=1)
    )
    run = runner.runs.trigger("lost").run
    runner.drive(runner.finished("lost", run.run_id))
    assert runner.run_state("lost", run.run_id) is RunState.FAILED
    (attempt,) = runner.runs.tries("lost", run.run_id, "t0")
    assert attempt.state is TaskState.FAILED
    assert attempt.error is not None and "pool 'nowhere' does not exist" in attempt.error
    # Made now, a clear runs it: the pool is read again at the next pass.
    PoolService(db, clock=SystemClock()).create(Pool("nowhere", 1), by="test")
    runner.changes.clear_run("lost", run.run_id, dry_run=False, by="test")
    runner.drive(runner.finished("lost", run.run_id), hint=Hint.run_changed(run.id))
    assert runner.run_state("lost", run.run_id) is RunState.SUCCESS
    cleared = EventLogService(db).list_events()[0]
    assert [e.event for e in cleared if e.dag_id == "lost"] == ["trigger", "clear"]


def test_more_slots_than_the_pool_has_fails_at_once(
    live: Callable[..., Live], db: Database
) -> None:
    runner = live()
    PoolService(db, clock=SystemClock()).create(Pool("small", 2), by="test")
    runner.write_dag(
        "greedy", SLEEPERS.format(dag_id="greedy", count=1, seconds=0, pool="small", slots=3)
    )
    run = runner.runs.trigger("greedy").run
    runner.drive(runner.finished("greedy", run.run_id))
    (attempt,) = runner.runs.tries("greedy", run.run_id, "t0")
    assert attempt.error is not None
    assert "pool_slots=3 is more than the 2 slots of pool 'small'" in attempt.error


def test_a_pool_of_zero_slots_holds_its_tasks(live: Callable[..., Live], db: Database) -> None:
    runner = live()
    pools = PoolService(db, clock=SystemClock())
    pools.create(Pool("paused", 0), by="test")
    runner.write_dag(
        "held", SLEEPERS.format(dag_id="held", count=2, seconds=0, pool="paused", slots=1)
    )
    run = runner.runs.trigger("held").run
    runner.drive(lambda: set(runner.states("held", run.run_id).values()) == {"scheduled"})
    for _ in range(3):
        runner.scheduler.tick([Hint.anything()])
    assert set(runner.states("held", run.run_id).values()) == {"scheduled"}
    assert pools.get("paused").scheduled == 2
    pools.update("paused", {"slots": 2}, by="test")
    runner.drive(runner.finished("held", run.run_id), hint=Hint.pools_changed())
    assert runner.run_state("held", run.run_id) is RunState.SUCCESS


def test_the_setting_sizes_default_pool_when_a_scheduler_starts(
    live: Callable[..., Live], db: Database
) -> None:
    live(default_pool_slots=7)
    pools = PoolService(db, clock=SystemClock())
    assert pools.get("default_pool").pool.slots == 7
    (entry,) = EventLogService(db).list_events()[0]
    assert (entry.event, entry.owner) == ("pool_set", "scheduler")


DEFERRED_AND_SLEEPER = """
from datetime import datetime, timedelta, timezone
from slipstream import DAG
from slipstream.authoring.operators import PythonOperator
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync

with DAG({dag_id!r}, schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=16) as dag:
    DateTimeSensorAsync(task_id="wait", target_time="{{{{ dag_run.conf['target'] }}}}",
                        pool={pool!r})
    PythonOperator(task_id="work", python_callable=lambda: None, pool={pool!r})
"""


@pytest.mark.parametrize("include_deferred", [True, False])
def test_include_deferred_makes_a_deferred_task_hold_its_slot(
    live: Callable[..., Live], db: Database, include_deferred: bool
) -> None:
    runner = live(parallelism=8, workers=2)
    pools = PoolService(db, clock=SystemClock())
    pools.create(Pool("one", 1, include_deferred=include_deferred), by="test")
    source = DEFERRED_AND_SLEEPER.format(dag_id="held", pool="one")
    runner.write_dag("held", source)
    target = datetime.now(UTC) + timedelta(seconds=3)
    run = runner.runs.trigger("held", conf={"target": target.isoformat()}).run
    runner.drive(runner.finished("held", run.run_id))
    assert runner.run_state("held", run.run_id) is RunState.SUCCESS
    (wait,) = runner.runs.tries("held", run.run_id, "wait")
    (work,) = runner.runs.tries("held", run.run_id, "work")
    assert wait.end_date is not None and work.start_date is not None
    if include_deferred:
        # The deferred sensor held the pool's one slot until its moment: "work" waited.
        assert work.start_date >= target
    else:
        # A deferred task holds no slot of a pool that does not count them.
        assert work.start_date < target
