"""TriggerDagRunOperator waiting for its run end to end: the real scheduler, the local
executor's worker processes and the wake-up socket, on SQLite and PostgreSQL. With one
executor slot (parallelism 1) the triggered run's task can only run if the waiting task holds
no slot: it runs while the controller waits (up_for_reschedule, or deferred), and the
controller then ends as the run did, in its first try, having triggered once."""

from __future__ import annotations

import itertools
import select
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipstream.core.states import TaskState
from slipstream.services.xcom_reader_factory import XComReaderFactory
from slipstream.store.db import Database
from slipstream.wakeup import Hint, WakeupListener
from tests.scheduler.test_arguments_live import Live

pytestmark = pytest.mark.slow

DAGS = """
import time
from datetime import datetime
from airflow import DAG
from airflow.operators.python import PythonOperator
from airflow.operators.trigger_dagrun import TriggerDagRunOperator

START = datetime(2026, 1, 1)

def job(ok):
    time.sleep(1)  # long enough to be seen running while the controller waits
    if not ok:
        raise ValueError("the job broke")

for name, ok in (("work", True), ("broken", False)):
    with DAG(name, schedule=None, start_date=START):
        PythonOperator(task_id="job", python_callable=job, op_args=[ok])

with DAG("controller", schedule=None, start_date=START, params={"to": "work"}):
    TriggerDagRunOperator(task_id="go", trigger_dag_id="{{ params.to }}",
                          wait_for_completion=True, poke_interval=4, deferrable=DEFER)
"""


class Wired:
    """A Live scheduler whose tries reach the database and wake the scheduler through its
    socket, stepped as the scheduler's loop steps it."""

    def __init__(self, db: Database, home: Path, socket_dir: Path) -> None:
        self.wakeup = WakeupListener(socket_dir / "wake")
        factory = XComReaderFactory(db.url, str(socket_dir / "wake"))
        self.live = Live(db, home, parallelism=1, workers=1, xcom_reader_factory=factory)
        self.live.executor.start()
        self.live.scheduler.start()

    def drive_until_finished(
        self, run_id: str, *, timeout: float = 60.0
    ) -> list[tuple[str, str | None]]:
        """Step until the controller's run ends; returns the (controller task, target task)
        states seen at each pass."""
        live = self.live
        seen: list[tuple[str, str | None]] = []
        deadline = time.monotonic() + timeout
        hints = [Hint.anything()]
        while not live.run_state("controller", run_id).is_finished:
            if time.monotonic() > deadline:
                raise AssertionError(f"controller run not finished within {timeout}s: {seen[-3:]}")
            wait = min(0.1, live.scheduler.seconds_until_due())
            fds = [*live.executor.filenos(), self.wakeup.fileno()]
            readable, _, _ = select.select(fds, [], [], wait)
            if self.wakeup.fileno() in readable:
                hints.extend(self.wakeup.drain())
            live.scheduler.tick(hints)
            hints = []
            seen.append((live.states("controller", run_id)["go"], self._target_state()))
        return seen

    def _target_state(self) -> str | None:
        found, _ = self.live.runs.find_runs(dag_ids=["work", "broken"])
        if not found:
            return None
        return self.live.states(found[0].dag_id, found[0].run_id).get("job")

    def close(self) -> None:
        self.live.scheduler.stop()
        self.wakeup.close()


@pytest.fixture
def wired(db: Database, tmp_path: Path) -> Iterator[Wired]:
    # A short folder for the socket: a Unix socket's path is limited to ~100 bytes.
    with tempfile.TemporaryDirectory(prefix="tw") as sockets:
        made = Wired(db, tmp_path / "home", Path(sockets))
        yield made
        made.close()


def _target_runs(wired: Wired, dag_id: str) -> list[str]:
    found, _ = wired.live.runs.find_runs(dag_ids=[dag_id])
    return [r.run_id for r in found]


@pytest.mark.parametrize("deferrable", [False, True])
def test_the_waiting_controller_holds_no_slot_and_succeeds_with_its_run(
    wired: Wired, deferrable: bool
) -> None:
    live = wired.live
    live.write_dag("dags", DAGS.replace("DEFER", str(deferrable)))
    run = live.runs.trigger("controller").run
    seen = wired.drive_until_finished(run.run_id)
    waiting = "deferred" if deferrable else "up_for_reschedule"
    # The target's task ran in the only slot while the controller waited (the controller's
    # success alone proves its wait held no slot: it needed the target to run first; the
    # poke_interval is long so that the job runs within the first wait, not as the
    # controller, woken, queues behind it). Seen running, or already done, while the
    # controller still waits: under load a pass can miss the second the job runs, when its
    # start is recorded with its end, but a job that succeeded in the only slot while the
    # controller was still waiting ran during that wait just the same.
    runs = [(state, len(list(group))) for state, group in itertools.groupby(seen)]
    assert any(go == waiting and job in ("running", "success") for go, job in seen), runs
    assert live.states("controller", run.run_id) == {"go": "success"}
    (target,) = _target_runs(wired, "work")
    assert live.states("work", target) == {"job": "success"}
    tries = live.runs.tries("controller", run.run_id, "go")
    assert [t.try_number for t in tries] == [1]
    assert live.runs.task_instances("controller", run.run_id)[0].state is TaskState.SUCCESS


def test_the_controller_fails_when_its_run_fails(wired: Wired) -> None:
    live = wired.live
    live.write_dag("dags", DAGS.replace("DEFER", "False"))
    run = live.runs.trigger("controller", conf={"to": "broken"}).run
    seen = wired.drive_until_finished(run.run_id)
    assert ("up_for_reschedule", "running") in seen
    assert live.states("controller", run.run_id) == {"go": "failed"}
    (target,) = _target_runs(wired, "broken")
    assert live.states("broken", target) == {"job": "failed"}
    error = live.runs.tries("controller", run.run_id, "go")[-1].error or ""
    assert "broken failed with failed state failed" in error
