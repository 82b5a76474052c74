"""Airflow's arguments enforced end to end: the real scheduler stepping its passes, the local
executor's worker processes running the tries (pool slots, priority order, depends_on_past,
dagrun_timeout, max_active_tis_per_dag across runs). The scheduler is stepped here as its
loop would: select on the executor's descriptors, then one pass."""

from __future__ import annotations

import select
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slipstream.clock import SystemClock
from slipstream.config import Settings
from slipstream.core.states import RunState, TaskState
from slipstream.executors.local import LocalExecutor
from slipstream.parsing.processor import DagFileProcessor
from slipstream.scheduler.tick import Scheduler
from slipstream.services.dag_files import DagFileSync
from slipstream.services.dags import DagService
from slipstream.services.run_changes import RunChangeService
from slipstream.services.runs import RunService
from slipstream.services.xcom_reader_factory import XComReaderFactory
from slipstream.store.db import Database
from slipstream.store.plans import PlanCache
from slipstream.wakeup import Hint

# Task code shared by the DAG files below: a task registers itself as running in a folder,
# waits (a bounded while) until it sees `want` running, notes the most it saw, then leaves.
# Wanting one more than a limit of N: with the limit held every note is N (once N ran side by
# side); without it some task would see N + 1.
GATHER = """
import os, time
from pathlib import Path

def gather(folder, name, want, patience):
    here = Path(folder)
    here.mkdir(parents=True, exist_ok=True)
    me = here / f"running-{name}-{os.getpid()}"
    me.touch()
    seen = 0
    deadline = time.monotonic() + patience
    while True:
        seen = max(seen, len(list(here.glob("running-*"))))
        if seen >= want or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    with (here / "seen").open("a") as out:
        out.write(f"{seen}\\n")
    me.unlink()
"""


class Live:
    def __init__(
        self,
        db: Database,
        home: Path,
        *,
        parallelism: int = 8,
        workers: int = 2,
        xcom_reader_factory: XComReaderFactory | None = None,
        **changes: object,
    ) -> None:
        self.db = db
        self.dags_folder = home / "dags"
        self.dags_folder.mkdir(parents=True)
        self.settings = (
            Settings.from_env({"SLIPSTREAM_HOME": str(home), "SLIPSTREAM_LOAD_EXAMPLES": "false"})
            .with_changes(database_url=db.url, parallelism=parallelism)
            .with_changes(**changes)
        )
        clock = SystemClock()
        self.executor = LocalExecutor(
            workers,
            parallelism,
            clock=clock,
            kill_grace_seconds=1.0,
            xcom_reader_factory=xcom_reader_factory,
        )
        self.sync = DagFileSync(
            db,
            DagFileProcessor([self.dags_folder], interval=0.05, import_timeout=20),
            clock=clock,
            paused_at_creation=False,
            wakeup=None,
        )
        plans = PlanCache()
        self.runs = RunService(db, clock=clock, plans=plans)
        self.changes = RunChangeService(db, clock=clock, plans=plans)
        self.dags = DagService(db)
        self.scheduler = Scheduler(
            db, self.executor, clock=clock, settings=self.settings, plans=plans
        )

    def write_dag(self, name: str, source: str) -> None:
        (self.dags_folder / f"{name}.py").write_text(textwrap.dedent(source))
        summary = self.sync.sync_now()
        assert summary.errors == 0, self.dags.import_errors()

    def drive(
        self, until: Callable[[], bool], *, timeout: float = 60.0, hint: Hint | None = None
    ) -> None:
        """Step the scheduler as its loop does until `until()` holds."""
        deadline = time.monotonic() + timeout
        hints = [hint or Hint.anything()]
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached within {timeout}s")
            wait = min(0.1, self.scheduler.seconds_until_due())
            select.select(self.executor.filenos(), [], [], wait)
            self.scheduler.tick(hints)
            hints = []

    def run_state(self, dag_id: str, run_id: str) -> RunState:
        return self.runs.get(dag_id, run_id).state

    def states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {t.task_id: t.state.value for t in self.runs.task_instances(dag_id, run_id)}

    def finished(self, dag_id: str, *run_ids: str) -> Callable[[], bool]:
        return lambda: all(self.run_state(dag_id, r).is_finished for r in run_ids)


@pytest.fixture
def live_factory(sqlite_db: Database, tmp_path: Path) -> Iterator[Callable[..., Live]]:
    made: list[Live] = []

    def make(**kwargs: object) -> Live:
        live = Live(sqlite_db, tmp_path / "home", **kwargs)  # type: ignore[arg-type]
        live.executor.start()
        live.scheduler.start()
        made.append(live)
        return live

    yield make
    for live in made:
        live.scheduler.stop()


def seen(folder: Path) -> list[int]:
    return [int(line) for line in (folder / "seen").read_text().split()]


def test_default_pool_slots_hold_across_dags(
    live_factory: Callable[..., Live], tmp_path: Path
) -> None:
    live = live_factory(default_pool_slots=3)
    folder = tmp_path / "pool"
    for name in ("left", "right"):
        live.write_dag(
            name,
            GATHER
            + f"""
from datetime import datetime
from slipstream import DAG
from slipstream.authoring.operators import PythonOperator

with DAG({name!r}, schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    for i in range(4):
        PythonOperator(task_id=f"t{{i}}", python_callable=gather,
                       op_args=[{str(folder)!r}, f"{name}{{i}}", 4, 1.5])
""",
        )
    runs = [live.runs.trigger(name).run for name in ("left", "right")]
    live.drive(lambda: all(live.run_state(r.dag_id, r.run_id).is_finished for r in runs))
    assert all(live.run_state(r.dag_id, r.run_id) is RunState.SUCCESS for r in runs)
    notes = seen(folder)
    assert len(notes) == 8
    assert max(notes) == 3  # three slots in the pool: reached, never exceeded


def test_priority_orders_the_work(live_factory: Callable[..., Live], tmp_path: Path) -> None:
    live = live_factory(parallelism=1, workers=1)
    order = tmp_path / "order"
    live.write_dag(
        "ranked",
        f"""
        from datetime import datetime
        from pathlib import Path
        from slipstream import DAG
        from slipstream.authoring.operators import EmptyOperator, PythonOperator

        def note(name):
            with Path({str(order)!r}).open("a") as out:
                out.write(name + "\\n")

        with DAG("ranked", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            start = EmptyOperator(task_id="start")
            for weight in (1, 10, 5, 3):
                start >> PythonOperator(task_id=f"p{{weight}}", python_callable=note,
                                        op_args=[f"p{{weight}}"], priority_weight=weight,
                                        weight_rule="absolute")
        """,
    )
    run = live.runs.trigger("ranked").run
    live.drive(live.finished("ranked", run.run_id))
    assert order.read_text().split() == ["p10", "p5", "p3", "p1"]


def test_depends_on_past_holds_a_run_after_a_failure_until_it_is_cleared(
    live_factory: Callable[..., Live], tmp_path: Path
) -> None:
    live = live_factory()
    flag = tmp_path / "fail"
    live.write_dag(
        "past",
        f"""
        from datetime import datetime
        from pathlib import Path
        from slipstream import DAG
        from slipstream.authoring.operators import PythonOperator

        def work():
            if Path({str(flag)!r}).exists():
                raise RuntimeError("the flag says fail")

        with DAG("past", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            PythonOperator(task_id="step", python_callable=work, depends_on_past=True)
        """,
    )
    flag.touch()
    first = live.runs.trigger("past").run
    live.drive(live.finished("past", first.run_id))
    assert live.run_state("past", first.run_id) is RunState.FAILED
    flag.unlink()
    second = live.runs.trigger("past").run
    live.drive(lambda: live.run_state("past", second.run_id) is RunState.RUNNING)
    # Passes go by (the scheduler keeps waking on its timers): the step stays waiting.
    stop_at = time.monotonic() + 1.0
    live.drive(lambda: time.monotonic() > stop_at)
    assert live.states("past", second.run_id) == {"step": TaskState.NONE.value}

    live.changes.clear_task_instances(
        "past", run_id=first.run_id, task_ids=["step"], dry_run=False, by="ops"
    )
    live.drive(live.finished("past", first.run_id, second.run_id), hint=Hint.run_changed(first.id))
    assert live.run_state("past", first.run_id) is RunState.SUCCESS
    assert live.run_state("past", second.run_id) is RunState.SUCCESS


def test_dagrun_timeout_fails_a_long_run_and_stops_its_try(
    live_factory: Callable[..., Live], tmp_path: Path
) -> None:
    live = live_factory()
    killed = tmp_path / "killed"
    live.write_dag(
        "long",
        f"""
        import time
        from datetime import datetime, timedelta
        from pathlib import Path
        from slipstream import DAG
        from slipstream.authoring.task import BaseOperator

        class Sleeper(BaseOperator):
            def execute(self, context):
                time.sleep(120)

            def on_kill(self):
                Path({str(killed)!r}).touch()

        with DAG("long", schedule=None, start_date=datetime(2024, 1, 1),
                 dagrun_timeout=timedelta(seconds=2)) as dag:
            Sleeper(task_id="sleep") >> Sleeper(task_id="after")
        """,
    )
    run = live.runs.trigger("long").run
    live.drive(live.finished("long", run.run_id), timeout=30)
    ended = live.runs.get("long", run.run_id)
    assert ended.state is RunState.FAILED
    assert ended.state_reason == "dagrun_timeout of 2s exceeded"
    assert live.states("long", run.run_id) == {"sleep": "skipped", "after": "skipped"}
    # The try in flight was stopped, its on_kill() called, as Airflow's task runner does.
    live.drive(killed.exists, timeout=20)


def test_max_active_tis_per_dag_holds_across_runs(
    live_factory: Callable[..., Live], tmp_path: Path
) -> None:
    live = live_factory()
    limited, free = tmp_path / "limited", tmp_path / "free"
    live.write_dag(
        "capped",
        GATHER
        + f"""
from datetime import datetime
from slipstream import DAG
from slipstream.authoring.operators import PythonOperator

with DAG("capped", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    PythonOperator(task_id="limited", python_callable=gather, max_active_tis_per_dag=1,
                   op_args=[{str(limited)!r}, "{{{{ run_id }}}}", 2, 0.5])
    PythonOperator(task_id="free", python_callable=gather,
                   op_args=[{str(free)!r}, "{{{{ run_id }}}}", 3, 5.0])
""",
    )
    now = datetime.now(UTC)
    runs = [
        live.runs.trigger("capped", logical_date=now - timedelta(minutes=i)).run for i in range(3)
    ]
    live.drive(live.finished("capped", *(r.run_id for r in runs)))
    assert all(live.run_state("capped", r.run_id) is RunState.SUCCESS for r in runs)
    assert seen(limited) == [1, 1, 1]  # one at a time across the three runs
    assert max(seen(free)) == 3  # while the same runs' unlimited task ran side by side


def test_a_task_needing_more_pool_slots_than_the_pool_has_fails_saying_why(
    live_factory: Callable[..., Live], tmp_path: Path
) -> None:
    # Airflow leaves it scheduled for ever; here it fails at once (no retries), the reason in
    # its try's log, its failure callback called, and the rest of the run goes on.
    live = live_factory(default_pool_slots=2)
    alerts = tmp_path / "alerts"
    live.write_dag(
        "heavy",
        f"""
        from datetime import datetime, timedelta
        from pathlib import Path
        from slipstream import DAG, task
        from slipstream.authoring.operators import PythonOperator

        def alert(context):
            with Path({str(alerts)!r}).open("a") as out:
                out.write(f"{{context['ti'].task_id}} {{context['ti'].map_index}}\\n")

        with DAG("heavy", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            big = PythonOperator(task_id="big", python_callable=print, pool_slots=3, retries=3,
                                 retry_delay=timedelta(seconds=0), on_failure_callback=alert)
            fits = PythonOperator(task_id="fits", python_callable=print, pool_slots=2)
            after = PythonOperator(task_id="after", python_callable=print)
            big >> after

            @task(pool_slots=5, on_failure_callback=alert)
            def each(x):
                return x

            each.expand(x=[1, 2])
        """,
    )
    run = live.runs.trigger("heavy").run
    live.drive(live.finished("heavy", run.run_id))
    assert live.run_state("heavy", run.run_id) is RunState.FAILED
    instances = {(t.task_id, t.map_index): t for t in live.runs.task_instances("heavy", run.run_id)}
    assert {key: ti.state.value for key, ti in instances.items()} == {
        ("big", -1): "failed",
        ("fits", -1): "success",
        ("after", -1): "upstream_failed",
        ("each", 0): "failed",
        ("each", 1): "failed",
    }
    (only_try,) = live.runs.tries("heavy", run.run_id, "big")  # no retry: it cannot help
    assert only_try.try_number == 1 and only_try.exit_reason is not None
    assert only_try.error is not None
    for text in (only_try.error, instances["big", -1].state_reason or ""):
        assert "pool_slots=3" in text and "2 slots of pool 'default_pool'" in text
        assert "SLIPSTREAM_DEFAULT_POOL_SLOTS" in text
    log = live.settings.log_folder / "heavy" / run.run_id / "big" / "1.log"
    assert "pool_slots=3 is more than the 2 slots of pool 'default_pool'" in log.read_text()
    mapped_log = live.settings.log_folder / "heavy" / run.run_id / "each" / "map_index=1" / "1.log"
    assert "pool_slots=5" in mapped_log.read_text()
    # The failure callbacks run in a worker, after the pass that failed the tries.
    live.drive(lambda: alerts.exists() and len(alerts.read_text().splitlines()) >= 3)
    assert sorted(alerts.read_text().splitlines()) == ["big -1", "each 0", "each 1"]
