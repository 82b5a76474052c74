"""A scheduler harness: real database, real DAG files parsed in child processes, the inline
executor (a seam we own) and a frozen clock, so each pass can be stepped and inspected."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slipstream.clock import FrozenClock
from slipstream.config import Settings
from slipstream.core.records import Run, TaskInstance, TaskTry
from slipstream.executors.inline import InlineExecutor
from slipstream.parsing.processor import DagFileProcessor
from slipstream.scheduler.tick import Scheduler
from slipstream.services.dag_files import DagFileSync
from slipstream.services.dags import DagService
from slipstream.services.runs import RunService
from slipstream.services.xcom_reader_factory import XComReaderFactory
from slipstream.store.db import Database
from slipstream.store.plans import PlanCache
from slipstream.wakeup import Hint

START = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


class Harness:
    def __init__(self, db: Database, home: Path, *, parallelism: int = 32) -> None:
        self.db = db
        self.clock = FrozenClock(START)
        self.dags_folder = home / "dags"
        self.dags_folder.mkdir(parents=True)
        self.settings = Settings.from_env(
            {"SLIPSTREAM_HOME": str(home), "SLIPSTREAM_LOAD_EXAMPLES": "false"}
        ).with_changes(database_url=db.url)
        self.executor = InlineExecutor(
            XComReaderFactory(db.url), clock=self.clock, parallelism=parallelism
        )
        self.sync = DagFileSync(
            db,
            DagFileProcessor([self.dags_folder], interval=0.05, import_timeout=20),
            clock=self.clock,
            paused_at_creation=False,
            wakeup=None,
        )
        # One plan cache for the scheduler and the services, as bootstrap wires them.
        self.plans = PlanCache()
        self.runs = RunService(db, clock=self.clock, plans=self.plans)
        self.dags = DagService(db)
        self.scheduler = self.new_scheduler()

    def new_scheduler(self) -> Scheduler:
        return Scheduler(
            self.db, self.executor, clock=self.clock, settings=self.settings, plans=self.plans
        )

    def write_dag(self, name: str, source: str) -> Path:
        path = self.dags_folder / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        summary = self.sync.sync_now()
        assert summary.errors == 0, self.dags.import_errors()
        return path

    def settle(self, hints: tuple[Hint, ...] = (Hint.anything(),), max_passes: int = 200) -> int:
        """Step passes until one changes nothing; returns how many passes ran."""
        for n in range(1, max_passes + 1):
            report = self.scheduler.tick(hints if n == 1 else ())
            if (
                report.events == report.queued == report.runs_started == report.runs_finished == 0
                and not self.scheduler.has_immediate_work()
            ):
                return n
        raise AssertionError(f"scheduler did not settle within {max_passes} passes")

    def run(self, dag_id: str, run_id: str) -> Run:
        return self.runs.get(dag_id, run_id)

    def states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {t.task_id: t.state.value for t in self.runs.task_instances(dag_id, run_id)}

    def tis(self, dag_id: str, run_id: str) -> dict[str, TaskInstance]:
        return {t.task_id: t for t in self.runs.task_instances(dag_id, run_id)}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[TaskTry]:
        return self.runs.tries(dag_id, run_id, task_id)


@pytest.fixture
def harness(db: Database, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(db, tmp_path)
    h.scheduler.start()
    yield h
