"""Dispatch through the scheduler (inline executor): default_pool's size and the order of
effective priorities; the same with real workers is in test_dispatch_local.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from slipstream.core.records import TaskEvent, Workload
from slipstream.core.states import RunState
from slipstream.scheduler.tick import Scheduler
from slipstream.store.db import Database
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness

WIDE = """
    from datetime import datetime
    from pathlib import Path
    from slipstream import DAG
    from slipstream.authoring.operators import PythonOperator

    ORDER = Path({order!r})

    def note(name):
        with ORDER.open("a") as out:
            out.write(name + "\\n")

    with DAG("wide", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=50) as dag:
        for i, weight in enumerate([1, 7, 3, 9, 5, 2]):
            PythonOperator(task_id=f"w{{weight}}", python_callable=note, op_args=[f"w{{weight}}"],
                           priority_weight=weight, pool_slots={slots})
"""


def test_default_pool_slots_bound_queued_tries(db: Database, tmp_path: Path) -> None:
    harness = Harness(db, tmp_path)
    harness.settings = harness.settings.with_changes(default_pool_slots=5)
    harness.scheduler = harness.new_scheduler()
    harness.scheduler.start()
    harness.write_dag("wide", WIDE.format(order=str(tmp_path / "order"), slots=2))
    run = harness.runs.trigger("wide").run
    harness.scheduler.tick([Hint.queued_run("wide")])
    # Two slots a try, five in the pool: two tries at a time, the heaviest first.
    queued = [t for t, s in harness.states("wide", run.run_id).items() if s == "queued"]
    assert sorted(queued) == ["w7", "w9"]
    harness.settle()
    assert harness.run("wide", run.run_id).state is RunState.SUCCESS


def test_higher_priority_runs_first(db: Database, tmp_path: Path) -> None:
    harness = Harness(db, tmp_path, parallelism=1)
    harness.scheduler.start()
    order = tmp_path / "order"
    harness.write_dag("wide", WIDE.format(order=str(order), slots=1))
    harness.runs.trigger("wide")
    harness.settle((Hint.queued_run("wide"),))
    assert order.read_text().split() == ["w9", "w7", "w5", "w3", "w2", "w1"]


class _Holding:
    """An executor that takes tries and never reports: they stay in flight."""

    capacity = 32

    def __init__(self) -> None:
        self.submitted: list[Workload] = []

    def start(self) -> None: ...

    def submit(self, workloads: Sequence[Workload]) -> None:
        self.submitted.extend(workloads)

    def events(self) -> list[TaskEvent]:
        return []

    def filenos(self) -> list[int]:
        return []

    def shutdown(self, *, graceful: bool = True) -> None: ...


def test_ready_work_held_by_a_limit_wakes_nobody_until_a_try_ends(
    db: Database, tmp_path: Path
) -> None:
    harness = Harness(db, tmp_path)
    executor = _Holding()
    scheduler = Scheduler(
        db, executor, clock=harness.clock, settings=harness.settings, plans=harness.plans
    )
    scheduler.start()
    harness.write_dag(
        "capped",
        """
        from datetime import datetime
        from slipstream import DAG
        from slipstream.authoring.operators import PythonOperator

        with DAG("capped", schedule=None, start_date=datetime(2024, 1, 1),
                 max_active_tasks=2) as dag:
            for i in range(5):
                PythonOperator(task_id=f"t{i}", python_callable=print)
        """,
    )
    harness.runs.trigger("capped")
    scheduler.tick([Hint.queued_run("capped")])
    assert len(executor.submitted) == 2
    # Three tasks are ready, slots are free in the executor, but the DAG is at its limit:
    # the loop may sleep (a pass now would change nothing).
    assert not scheduler.has_immediate_work()
    assert scheduler.tick().queued == 0
    assert len(executor.submitted) == 2
