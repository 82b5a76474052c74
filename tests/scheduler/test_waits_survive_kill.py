"""Waiting tasks survive a scheduler killed outright (SIGKILL) and restarted: reschedule-mode
PythonSensor and FileSensor, deferred DateTimeSensorAsync and TimeDeltaSensor, and
TriggerDagRunOperator waiting (rescheduled and deferred) for a child run. A real `slipstream
scheduler` with its worker host, on SQLite and PostgreSQL: nothing of the first scheduler is
left running, and the second one ends every wait in the same try, its pokes counted on from
where they were. A poke or check in the middle of its run is lost only with the worker host
running it (a scheduler's death no longer ends it): then too the same try pokes again."""

from __future__ import annotations

import os
import re
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slipstream.core.records import ExitReason, Run, TaskInstance
from slipstream.core.states import RunState, TaskState
from slipstream.errors import RunNotFound
from slipstream.lifeline import is_alive
from slipstream.store.db import Database
from slipstream.worker.lock import holder_pid
from tests.chaos.test_chaos import descendants
from tests.scheduler.test_arguments_live import Live
from tests.scheduler.test_loop import Deployment, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="process trees are read from /proc"),
]

# Seconds between pokes (and checks of a triggered run): long enough that the pokes of all
# the waiting tasks leave moments when none runs, to kill the scheduler in (a check of a
# triggered run takes about a second: its process loads the database layer to read the run).
INTERVAL = 3.0
# How far ahead the time sensors' moments are: after the kill and the restart.
AHEAD_SECONDS = 15

HEADER = """
import time
from datetime import datetime, timedelta
from pathlib import Path

from airflow import DAG
from airflow.operators.python import PythonOperator
from airflow.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sensors.date_time import DateTimeSensorAsync
from airflow.sensors.filesystem import FileSensor
from airflow.sensors.python import PythonSensor
from airflow.sensors.time_delta import TimeDeltaSensor

GATES = Path({gates!r})
START = datetime(2026, 1, 1)
POKES = dict(mode="reschedule", poke_interval={interval}, timeout=300)

with DAG("child", schedule=None, start_date=START, max_active_runs=8):
    FileSensor(task_id="gate", filepath=str(GATES / "child_gate"), **POKES)
"""

WAITERS = """
def flag_is_up():
    return (GATES / "python_flag").exists()


with DAG("waiters", schedule=None, start_date=START):
    before = PythonOperator(task_id="before", python_callable=lambda: "done before the kill")
    waiting = [
        PythonSensor(task_id="python_sensor", python_callable=flag_is_up, **POKES),
        FileSensor(task_id="file_sensor", filepath=str(GATES / "file_*.csv"), **POKES),
        DateTimeSensorAsync(task_id="moment", target_time="{{ dag_run.conf['moment'] }}"),
        TimeDeltaSensor(task_id="delta", delta=timedelta(seconds=AHEAD)),
        TriggerDagRunOperator(
            task_id="trigger_rescheduled", trigger_dag_id="child",
            trigger_run_id="{{ run_id }}__rescheduled",
            wait_for_completion=True, poke_interval=INTERVAL,
        ),
        TriggerDagRunOperator(
            task_id="trigger_deferred", trigger_dag_id="child",
            trigger_run_id="{{ run_id }}__deferred",
            wait_for_completion=True, poke_interval=INTERVAL, deferrable=True,
        ),
    ]
    after = PythonOperator(task_id="after", python_callable=lambda: "done after the restart")
    before >> waiting >> after
"""

# A poke and a check of the triggered run that hang (the second poke, the first check): the
# worker host is killed while they run in its workers.
MID_POKE = """
def _hang_on(name, count):
    marks = GATES / name
    seen = len(marks.read_text()) if marks.exists() else 0
    with marks.open("a") as out:
        out.write("x")
    if seen == count:
        (GATES / f"{name}.hanging").write_text("")
        while True:
            time.sleep(0.05)


def flag_is_up():
    _hang_on("pokes", 1)
    return (GATES / "python_flag").exists()


class CheckHangsOnce(TriggerDagRunOperator):
    def check_triggered_run(self, context, event=None, **kwargs):
        _hang_on("checks", 0)
        return super().check_triggered_run(context, event, **kwargs)


with DAG("mid_poke", schedule=None, start_date=START):
    PythonSensor(task_id="python_sensor", python_callable=flag_is_up, **POKES)
    # Its own default run id (manual__<now>): triggering again would start a second run.
    CheckHangsOnce(task_id="trigger", trigger_dag_id="child", wait_for_completion=True,
                   poke_interval=INTERVAL)
"""

POKING = ("python_sensor", "file_sensor", "trigger_rescheduled", "trigger_deferred")
WAITING = {
    "python_sensor": TaskState.UP_FOR_RESCHEDULE,
    "file_sensor": TaskState.UP_FOR_RESCHEDULE,
    "trigger_rescheduled": TaskState.UP_FOR_RESCHEDULE,
    "trigger_deferred": TaskState.DEFERRED,
    "moment": TaskState.DEFERRED,
    "delta": TaskState.DEFERRED,
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Deployment:
    url = request.getfixturevalue("pg_db").url if request.param == "postgresql" else None
    d = Deployment(tmp_path / "home", url)
    request.addfinalizer(lambda: _close(d))
    return d


def _close(d: Deployment) -> None:
    d.stop()
    d.wakeup.close()
    d.db.dispose()


def _write_dags(d: Deployment, gates: Path, body: str) -> None:
    header = HEADER.format(gates=str(gates), interval=INTERVAL)
    constants = f"AHEAD = {AHEAD_SECONDS}\nINTERVAL = {INTERVAL}\n"
    d.write_dag("dags", header + constants + body)


def _instances(d: Deployment, dag_id: str, run_id: str) -> dict[str, TaskInstance]:
    return {ti.task_id: ti for ti in d.runs.task_instances(dag_id, run_id)}


def _kill_and_restart(d: Deployment) -> None:
    """SIGKILL the scheduler, see every process it started end, and start another."""
    assert d.process is not None
    tree = descendants(d.process.pid)
    assert tree, "the scheduler started no workers?"
    d.kill()
    wait_for(lambda: not any(is_alive(pid) for pid in tree), 10, "the scheduler's processes to end")


def _tries_run(d: Deployment, dag_id: str, run_id: str, task_id: str) -> int:
    """How many times a process ran the task's first try (each poke or check is one)."""
    log = d.settings.log_folder / dag_id / run_id / task_id / "1.log"
    return log.read_text().count("Running <") if log.exists() else 0


def _quiet_moment(d: Deployment, run: Run, children: list[str]) -> bool:
    """Every task of `run` waits as a row, each poking one has poked (or checked) before, and
    no wake-up is due in the next moment: no poke runs, nor starts before the kill."""
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    tis = _instances(d, "waiters", run.run_id)
    try:
        gates = [_instances(d, "child", child).get("gate") for child in children]
    except RunNotFound:  # not triggered yet
        return False
    for task_id, state in WAITING.items():
        ti = tis.get(task_id)
        if ti is None or ti.state is not state or ti.wake_at is None or ti.wake_at < soon:
            return False
        least = 2 if task_id in ("python_sensor", "file_sensor") else 1
        if task_id in POKING and (ti.wait is None or ti.wait.pokes < least):
            return False
    return all(
        gate is not None
        and gate.state is TaskState.UP_FOR_RESCHEDULE
        and gate.wake_at is not None
        and gate.wake_at >= soon
        for gate in gates
    )


def test_sensors_waiting_when_the_scheduler_is_killed_end_in_their_first_try(
    deployment: Deployment, tmp_path: Path
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    _write_dags(deployment, gates, WAITERS)
    deployment.start()
    moment = datetime.now(UTC) + timedelta(seconds=AHEAD_SECONDS)
    run = deployment.trigger("waiters", {"moment": moment.isoformat()})
    children = [f"{run.run_id}__rescheduled", f"{run.run_id}__deferred"]

    wait_for(lambda: _quiet_moment(deployment, run, children), 30, "every task to wait")
    _kill_and_restart(deployment)
    killed_at = datetime.now(UTC)
    before_kill = _instances(deployment, "waiters", run.run_id)
    assert {t: before_kill[t].state for t in WAITING} == WAITING
    assert before_kill["before"].state is TaskState.SUCCESS
    ran_before = {t: _tries_run(deployment, "waiters", run.run_id, t) for t in WAITING}
    pokes_before = {t: before_kill[t].wait.pokes for t in POKING}  # type: ignore[union-attr]

    deployment.start()
    # The moments were still ahead when the new scheduler took over: it ends the timed waits.
    assert datetime.now(UTC) < moment, "the restart took longer than the time sensors' lead"
    # The conditions come true only now, after the restart.
    (gates / "python_flag").write_text("up")
    (gates / "file_1.csv").write_text("a,b\n")
    (gates / "child_gate").write_text("open")

    done = deployment.finished(run, timeout=60)
    finished_at = datetime.now(UTC)
    assert done.state is RunState.SUCCESS, done.state_reason
    tis = _instances(deployment, "waiters", run.run_id)
    assert {t: ti.state for t, ti in tis.items()} == dict.fromkeys(tis, TaskState.SUCCESS)
    for task_id in (*WAITING, "before", "after"):
        tries = deployment.runs.tries("waiters", run.run_id, task_id)
        # One try each: nothing that had finished ran again, and a wait is the same try.
        assert [(t.try_number, t.state) for t in tries] == [(1, TaskState.SUCCESS)], tries
    assert _tries_run(deployment, "waiters", run.run_id, "before") == 1

    # The time sensors ran once, to defer; the second scheduler ended them at their moment.
    assert done.data_interval_end is not None
    delta_moment = done.data_interval_end + timedelta(seconds=AHEAD_SECONDS)
    for task_id, target in (("moment", moment), ("delta", delta_moment)):
        assert ran_before[task_id] == 1
        assert _tries_run(deployment, "waiters", run.run_id, task_id) == 1
        end = tis[task_id].end_date
        assert end is not None and target <= end <= finished_at, (task_id, end, target)

    # Pokes went on from where they were: none lost nor repeated, no frenzy to catch up.
    up_seconds = (finished_at - killed_at).total_seconds()
    for task_id in POKING:
        ran = _tries_run(deployment, "waiters", run.run_id, task_id)
        # A sensor's pokes are its runs; a trigger's checks follow the run that triggered.
        assert ran_before[task_id] == pokes_before[task_id] + (task_id.startswith("trigger"))
        assert ran_before[task_id] < ran <= ran_before[task_id] + up_seconds / INTERVAL + 2
    log = deployment.settings.log_folder / "waiters" / run.run_id / "python_sensor" / "1.log"
    numbers = [int(n) for n in re.findall(r"poke (\d+) not met", log.read_text())]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 2, numbers

    # Every run ended: the parent, and the two runs it triggered and waited for.
    for child_run in children:
        assert deployment.runs.get("child", child_run).state is RunState.SUCCESS
        [gate] = deployment.runs.tries("child", child_run, "gate")
        assert (gate.try_number, gate.state) == (1, TaskState.SUCCESS)
    for dag_id, count in (("waiters", 1), ("child", 2)):
        runs, total = deployment.runs.list_runs(dag_id)
        assert total == count and {r.state for r in runs} == {RunState.SUCCESS}, runs
    assert deployment.process is not None and deployment.process.poll() is None
    out = (deployment.home / "scheduler.out").read_text()
    assert "Traceback" not in out and "ERROR" not in out, out


def test_a_poke_and_a_check_killed_with_their_worker_host_wait_again_in_their_try(
    deployment: Deployment, tmp_path: Path
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    _write_dags(deployment, gates, MID_POKE)
    deployment.start()
    run = deployment.trigger("mid_poke")
    for name in ("pokes", "checks"):
        hanging = gates / f"{name}.hanging"
        wait_for(hanging.exists, 30, f"a hanging {name[:-1]}")

    # Both run in the same try as before, woken from their waits.
    def woken_and_running() -> dict[str, TaskInstance] | None:
        tis = _instances(deployment, "mid_poke", run.run_id)
        running = all(
            ti.state is TaskState.RUNNING and ti.try_number == 1 and ti.wait is not None
            for ti in tis.values()
        )
        return tis if running else None

    before_kill = wait_for(woken_and_running, 30, "both tries to be seen running")
    assert isinstance(before_kill, dict)
    first_poke = before_kill["python_sensor"].wait
    host = holder_pid(deployment.settings.worker_lock_path)
    assert host is not None
    tree = descendants(host) | {host}
    os.kill(host, signal.SIGKILL)
    wait_for(lambda: not any(is_alive(pid) for pid in tree), 10, "the host's processes to end")

    # The scheduler, still running, starts another host. The lost poke is poked again in the
    # same try, which keeps its timeout's origin; the poke lost was never counted.
    again = wait_for(
        lambda: (
            (ti := _instances(deployment, "mid_poke", run.run_id)["python_sensor"]).state
            is TaskState.UP_FOR_RESCHEDULE
            and ti.wait is not None
            and ti.wait.pokes == 2
            and ti
        ),
        30,
        "the sensor to poke again after the restart",
    )
    assert isinstance(again, TaskInstance) and again.wait is not None
    assert first_poke is not None and again.wait.started_at == first_poke.started_at
    assert again.wait.timeout_at == first_poke.timeout_at and again.try_number == 1
    (gates / "python_flag").write_text("up")
    (gates / "child_gate").write_text("open")
    done = deployment.finished(run, timeout=60)
    assert done.state is RunState.SUCCESS, done.state_reason
    for task_id in ("python_sensor", "trigger"):
        tries = deployment.runs.tries("mid_poke", run.run_id, task_id)
        # The lost poke was the infrastructure's doing: the same try pokes again.
        assert [(t.try_number, t.state, t.exit_reason) for t in tries] == [
            (1, TaskState.SUCCESS, ExitReason.SUCCESS)
        ], tries
    log = deployment.settings.log_folder / "mid_poke" / run.run_id / "python_sensor" / "1.log"
    text = log.read_text()
    lost = (
        f"this poke was lost (the worker host (pid {host}) died while the try was in flight);"
        " the same try"
    )
    assert f"WARNING - {lost} pokes again at once" in text, text
    numbers = [int(n) for n in re.findall(r"poke (\d+) not met", text)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 2, numbers
    assert (gates / "pokes").read_text().count("x") == len(numbers) + 2  # + lost + met
    # The triggered run was triggered once, and ended.
    runs, total = deployment.runs.list_runs("child")
    assert total == 1 and runs[0].state is RunState.SUCCESS, runs
    assert len((gates / "checks").read_text()) >= 2  # the lost check, and those after
    trigger_log = deployment.settings.log_folder / "mid_poke" / run.run_id / "trigger" / "1.log"
    assert "this resume was lost" in trigger_log.read_text()


SELF_KILLING = """
import os, signal
from datetime import datetime
from pathlib import Path
from airflow import DAG
from airflow.sensors.python import PythonSensor

MARKS = Path({marks!r})


def poke():
    with MARKS.open("a") as out:
        out.write("x")
    if len(MARKS.read_text()) > 1:  # every poke after the first kills its own process
        os.kill(os.getpid(), signal.SIGKILL)
    return False


with DAG("self_killing", schedule=None, start_date=datetime(2024, 1, 1)):
    PythonSensor(task_id="sensor", python_callable=poke, mode="reschedule", poke_interval=0.2,
                 retries={retries})
"""


def test_pokes_lost_in_a_row_draw_on_the_infrastructure_budget_then_tries_follow(
    db: Database, tmp_path: Path
) -> None:
    live = Live(db, tmp_path / "home", infra_retries=2)
    live.executor.start()
    live.scheduler.start()
    try:
        marks = tmp_path / "marks"
        live.write_dag("self_killing", SELF_KILLING.format(marks=str(marks), retries=0))
        run = live.runs.trigger("self_killing").run
        live.drive(live.finished("self_killing", run.run_id), timeout=60)
    finally:
        live.scheduler.stop()
    assert live.run_state("self_killing", run.run_id) is RunState.FAILED
    tries = live.runs.tries("self_killing", run.run_id, "sensor")
    # Try 1: poke 1 is not met; the next two runs die and the same try pokes again (a budget
    # of 2 in a row); the third dies with that spent, and the task's retry policy takes over:
    # lost tries retried on the same budget (tries 2 and 3, each a fresh sensor), then failed.
    assert [(t.try_number, t.state, t.exit_reason) for t in tries] == [
        (number, TaskState.FAILED, ExitReason.PROCESS_KILLED) for number in (1, 2, 3)
    ]
    assert len(marks.read_text()) == 6
    folder = live.settings.log_folder / "self_killing" / run.run_id / "sensor"
    first = (folder / "1.log").read_text()
    lost = "WARNING - this poke was lost (killed by signal SIGKILL); the same try pokes again"
    assert first.count(lost) == 2, first
    assert first.rstrip().endswith("killed by signal SIGKILL; the task is retried as try 2")
    last = (folder / "3.log").read_text()
    assert last.rstrip().endswith(
        "ERROR - killed by signal SIGKILL; the task failed (no retries left)"
    ), last
