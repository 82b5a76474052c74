"""Tries outlive their scheduler: real `slipstream scheduler` processes killed and restarted
beside the worker host they started. No try dies with its scheduler, and none runs twice."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slipstream.bootstrap import dag_file_sync
from slipstream.clock import SystemClock
from slipstream.core.records import ExitReason, TaskEvent, Workload
from slipstream.core.states import RunState, TaskState
from slipstream.lifeline import is_alive
from slipstream.scheduler.tick import Scheduler
from slipstream.store import jobs as jobs_store
from slipstream.wakeup import Hint
from tests.worker.conftest import Home, wait_for

pytestmark = pytest.mark.slow

MARKED = """
from datetime import datetime
import time
from slipstream import DAG, task

with DAG("marked", schedule=None, start_date=datetime(2024, 1, 1), max_active_runs=30) as dag:
    def step(name):
        @task(task_id=name)
        def work(**context):
            time.sleep(0.3)
            # Written once the work is done: a try that ran twice shows up twice here.
            with open({marker!r}, "a") as out:
                out.write(f"{{context['run_id']}} {{name}}\\n")
        return work()

    step("a") >> step("b") >> step("c")
"""

GATED = """
from datetime import datetime
from pathlib import Path
import time
from slipstream import DAG, task

with DAG("gated", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def wait_for_gate(**context):
        Path({gate!r} + ".started").write_text(str(context["ti"].try_number))
        while not Path({gate!r}).exists():
            time.sleep(0.05)
        with open({gate!r} + ".done", "a") as out:
            out.write(f"{{context['ti'].try_number}}\\n")
        return "through"

    wait_for_gate()
"""


def test_a_burst_survives_kill_9_of_its_scheduler_and_nothing_runs_twice(
    home: Home, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    home.write_dag("marked", MARKED.format(marker=str(marker)))
    home.start_scheduler()
    runs = [home.trigger("marked", {"i": i}) for i in range(30)]

    def lines() -> list[str]:
        return marker.read_text().splitlines() if marker.exists() else []

    wait_for(lambda: len(lines()) >= 20, 120, "the burst to be under way")
    home.kill_scheduler()
    assert len(lines()) < 90, "the burst was over before the kill"
    home.start_scheduler()
    for run in runs:
        assert home.finished(run, timeout=120).state is RunState.SUCCESS, run.run_id
    counted = Counter(lines())
    assert len(counted) == 90, sorted(counted)
    assert [line for line, n in counted.items() if n > 1] == []
    for run in runs:
        for task_id in "abc":
            tries = home.tries(run, task_id)
            assert [(t.try_number, t.exit_reason) for t in tries] == [(1, ExitReason.SUCCESS)], (
                run.run_id,
                task_id,
                tries,
            )


def test_a_restarted_scheduler_adopts_a_try_still_running(home: Home, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    home.write_dag("gated", GATED.format(gate=str(gate)))
    first = home.start_scheduler()
    run = home.trigger("gated")
    wait_for(lambda: Path(f"{gate}.started").exists(), 60, "the try to start")
    wait_for(lambda: home.instance(run, "wait_for_gate").state is TaskState.RUNNING, 30, "running")
    host = home.host_pid()
    assert host is not None and host != first.pid
    home.kill_scheduler()
    assert is_alive(host)  # the try's host outlived its scheduler
    home.start_scheduler()
    assert home.host_pid() == host
    # Opened only now: the try's end reaches the scheduler that adopted it.
    gate.write_text("open")
    assert home.finished(run).state is RunState.SUCCESS
    assert [(t.try_number, t.exit_reason) for t in home.tries(run, "wait_for_gate")] == [
        (1, ExitReason.SUCCESS)
    ]
    assert Path(f"{gate}.done").read_text().split() == ["1"]


def test_a_stopped_scheduler_leaves_its_tries_running_for_the_next(
    sqlite_home: Home, tmp_path: Path
) -> None:
    home = sqlite_home
    gate = tmp_path / "gate"
    home.write_dag("gated", GATED.format(gate=str(gate)))
    home.start_scheduler()
    run = home.trigger("gated")
    wait_for(lambda: Path(f"{gate}.started").exists(), 60, "the try to start")
    host = home.host_pid()
    assert host is not None
    assert home.stop_scheduler() == 0  # SIGTERM: it detaches, and kills nothing
    assert home.instance(run, "wait_for_gate").state in (TaskState.QUEUED, TaskState.RUNNING)
    gate.write_text("open")
    # The try ends with no scheduler attached: its outcome waits in the outbox, and the
    # autostarted host, detached on purpose and holding nothing more, exits.
    wait_for(lambda: home.outbox_rows() == 1, 30, "the outcome in the outbox")
    wait_for(lambda: not is_alive(host), 30, "the detached host to exit once idle")
    assert home.instance(run, "wait_for_gate").state in (TaskState.QUEUED, TaskState.RUNNING)
    home.start_scheduler()
    assert home.finished(run).state is RunState.SUCCESS
    assert home.outbox_rows() == 0
    assert [(t.try_number, t.exit_reason) for t in home.tries(run, "wait_for_gate")] == [
        (1, ExitReason.SUCCESS)
    ]


def test_a_killed_host_loses_its_tries_to_the_infrastructure_budget_and_is_replaced(
    home: Home, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    home.write_dag("gated", GATED.format(gate=str(gate)))
    home.start_scheduler()
    run = home.trigger("gated")
    wait_for(lambda: Path(f"{gate}.started").exists(), 60, "the try to start")
    host = home.host_pid()
    assert host is not None
    os.kill(host, signal.SIGKILL)
    # Lost with its host, retried at once on the infrastructure budget in a new host.
    wait_for(lambda: Path(f"{gate}.started").read_text() == "2", 60, "the second try to start")
    replacement = home.host_pid()
    assert replacement is not None and replacement != host
    gate.write_text("open")
    assert home.finished(run).state is RunState.SUCCESS
    tries = home.tries(run, "wait_for_gate")
    assert [(t.try_number, t.exit_reason) for t in tries] == [
        (1, ExitReason.WORKER_LOST),
        (2, ExitReason.SUCCESS),
    ]
    assert tries[0].error is not None and f"worker host (pid {host}) died" in tries[0].error
    assert home.instance(run, "wait_for_gate").infra_failures == 1
    assert Path(f"{gate}.done").read_text().split() == ["2"]


class _NeverSends:
    """A scheduler's executor that queues and then dies before sending anything."""

    capacity = 32

    def start(self) -> None: ...

    def submit(self, workloads: Sequence[Workload]) -> None: ...

    def events(self) -> list[TaskEvent]:
        return []

    def filenos(self) -> list[int]:
        return []

    def shutdown(self, *, graceful: bool = True) -> None: ...


def test_a_try_queued_by_a_scheduler_that_died_before_sending_it_is_sent_again(
    home: Home, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.write_text("open")
    home.write_dag("gated", GATED.format(gate=str(gate)))
    dag_file_sync(home.settings, home.db, SystemClock(), None).sync_now()
    # A scheduler commits the queueing of the try, and dies before the RunTry went out.
    gone = Scheduler(home.db, _NeverSends(), clock=SystemClock(), settings=home.settings)
    gone.start()
    run = home.runs.trigger("gated").run
    gone.tick([Hint.queued_run("gated")])
    assert home.instance(run, "wait_for_gate").state is TaskState.QUEUED
    assert gone.job_id is not None
    with home.db.write() as conn:  # as the next scheduler finds it: dead
        jobs_store.end_job(conn, gone.job_id, datetime.now(UTC), state=jobs_store.LOST)
    home.start_scheduler()
    assert home.finished(run).state is RunState.SUCCESS
    # Never run, so sent again under the same try number, not failed as lost.
    assert [(t.try_number, t.exit_reason) for t in home.tries(run, "wait_for_gate")] == [
        (1, ExitReason.SUCCESS)
    ]
    assert "sending again 1 tries" in home.output("scheduler-1")
