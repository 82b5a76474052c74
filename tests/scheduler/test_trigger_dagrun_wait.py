"""TriggerDagRunOperator waiting for the run it triggered (wait_for_completion), through the
scheduler on a frozen clock: the try ends waiting (up_for_reschedule, or deferred with
deferrable) with no process, the scheduler wakes the same try every poke_interval to read the
run's state, and the task succeeds or fails with Airflow's message; it triggers only once."""

from __future__ import annotations

import json
from datetime import timedelta

from slipstream.core.states import TaskState
from slipstream.services.run_changes import RunChangeService
from tests.scheduler.conftest import START, Harness

DAGS = """
from datetime import datetime
from pathlib import Path
from airflow import DAG
from airflow.operators.python import PythonOperator
from airflow.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sensors.base import BaseSensorOperator

START = datetime(2026, 1, 1)
FLAG = Path(__file__).with_name("flag")

class FlagSensor(BaseSensorOperator):
    def poke(self, context):
        return FLAG.exists()

def boom():
    raise ValueError("target task broke")

with DAG("slow", schedule=None, start_date=START):
    FlagSensor(task_id="flag", mode="reschedule", poke_interval=10)

with DAG("quick", schedule=None, start_date=START):
    PythonOperator(task_id="read", python_callable=lambda: "done")

with DAG("breaks", schedule=None, start_date=START):
    PythonOperator(task_id="boom", python_callable=boom)

with DAG("waiter", schedule=None, start_date=START, params={"to": "slow"}):
    TriggerDagRunOperator(task_id="go", trigger_dag_id="{{ params.to }}",
                          wait_for_completion=True, poke_interval=30)

with DAG("deferring", schedule=None, start_date=START):
    TriggerDagRunOperator(task_id="go", trigger_dag_id="quick", wait_for_completion=True,
                          deferrable=True, poke_interval=30)

with DAG("inverted", schedule=None, start_date=START):
    TriggerDagRunOperator(task_id="go", trigger_dag_id="breaks", wait_for_completion=True,
                          poke_interval=30, allowed_states=["failed"],
                          failed_states=["success"])

with DAG("resetting", schedule=None, start_date=START):
    TriggerDagRunOperator(task_id="again", trigger_dag_id="quick", trigger_run_id="fixed_run",
                          reset_dag_run=True, wait_for_completion=True, poke_interval=30)

with DAG("no_wait", schedule=None, start_date=START):
    TriggerDagRunOperator(task_id="fire", trigger_dag_id="slow", deferrable=True)

with DAG("skipping", schedule=None, start_date=START):
    TriggerDagRunOperator(task_id="once", trigger_dag_id="quick", trigger_run_id="fixed_run",
                          skip_when_already_exists=True, wait_for_completion=True,
                          poke_interval=30)
"""


def _xcom(h: Harness, dag_id: str, run_id: str, task_id: str, key: str) -> object:
    entries, _, _ = h.runs.xcom_entries(dag_id, run_id, task_id, key=key)
    return json.loads(entries[0].value)


def _runs(h: Harness, dag_id: str) -> list[str]:
    found, _ = h.runs.find_runs(dag_ids=[dag_id])
    return [r.run_id for r in found]


def _step(h: Harness, seconds: float = 0) -> None:
    """Advance the clock, then let the scheduler run what is due (a run a try triggered is
    found by the second settle: the harness has no wake-up socket)."""
    h.clock.advance(seconds)
    h.settle()
    h.settle()


def test_the_task_waits_without_a_process_and_succeeds_when_the_run_does(
    harness: Harness,
) -> None:
    h = harness
    h.write_dag("dags", DAGS)
    run = h.runs.trigger("waiter").run
    _step(h)
    ti = h.tis("waiter", run.run_id)["go"]
    assert ti.state is TaskState.UP_FOR_RESCHEDULE and ti.try_number == 1
    assert ti.wake_at == START + timedelta(seconds=30)
    assert ti.wait is not None and ti.wait.next_method == "check_triggered_run"
    assert not h.scheduler._state.in_flight  # the wait holds no executor slot
    (target,) = _runs(h, "slow")
    assert _xcom(h, "waiter", run.run_id, "go", "trigger_run_id") == target
    assert ti.state_reason is not None and target in ti.state_reason

    # Two checks while the target still waits for its flag: no second trigger.
    for checks in (1, 2):
        _step(h, 30)
        ti = h.tis("waiter", run.run_id)["go"]
        assert ti.state is TaskState.UP_FOR_RESCHEDULE and ti.try_number == 1
        assert ti.wait is not None and ti.wait.pokes == checks
        assert ti.wake_at == START + timedelta(seconds=30 * (checks + 1))
        assert _runs(h, "slow") == [target]
        assert h.run("slow", target).state.value == "running"

    (h.dags_folder / "flag").write_text("")
    _step(h, 30)  # the target's sensor pokes again and succeeds
    assert h.run("slow", target).state.value == "success"
    _step(h, 30)
    ti = h.tis("waiter", run.run_id)["go"]
    assert ti.state is TaskState.SUCCESS and ti.try_number == 1
    assert [t.try_number for t in h.tries("waiter", run.run_id, "go")] == [1]
    assert _runs(h, "slow") == [target]
    assert h.run("waiter", run.run_id).state.value == "success"


def test_the_task_fails_with_airflows_message_when_the_run_fails(harness: Harness) -> None:
    h = harness
    h.write_dag("dags", DAGS)
    run = h.runs.trigger("waiter", conf={"to": "breaks"}).run
    _step(h)
    (target,) = _runs(h, "breaks")
    assert h.run("breaks", target).state.value == "failed"
    assert h.states("waiter", run.run_id) == {"go": "up_for_reschedule"}
    _step(h, 30)
    assert h.states("waiter", run.run_id) == {"go": "failed"}
    error = h.tries("waiter", run.run_id, "go")[-1].error or ""
    assert "AirflowException" in error and "breaks failed with failed state failed" in error
    assert _runs(h, "breaks") == [target]


def test_allowed_and_failed_states_decide_the_outcome(harness: Harness) -> None:
    h = harness
    h.write_dag("dags", DAGS)
    run = h.runs.trigger("inverted").run
    _step(h)
    _step(h, 30)
    # The target failed, which this task counts as its success.
    assert h.states("inverted", run.run_id) == {"go": "success"}


def test_deferrable_waits_as_deferred_and_resumes_when_the_run_is_done(
    harness: Harness,
) -> None:
    h = harness
    h.write_dag("dags", DAGS)
    run = h.runs.trigger("deferring").run
    _step(h)
    ti = h.tis("deferring", run.run_id)["go"]
    assert ti.state is TaskState.DEFERRED and ti.try_number == 1
    assert ti.wake_at == START + timedelta(seconds=30)
    (target,) = _runs(h, "quick")
    assert h.run("quick", target).state.value == "success"
    _step(h, 29)
    assert h.states("deferring", run.run_id) == {"go": "deferred"}
    _step(h, 1)
    ti = h.tis("deferring", run.run_id)["go"]
    assert ti.state is TaskState.SUCCESS and ti.try_number == 1
    assert _runs(h, "quick") == [target]


def test_reset_dag_run_waits_for_the_cleared_run_and_skip_does_not_wait(
    harness: Harness,
) -> None:
    h = harness
    h.write_dag("dags", DAGS)
    h.runs.trigger("quick", run_id="fixed_run")
    _step(h)
    assert h.run("quick", "fixed_run").state.value == "success"

    reset = h.runs.trigger("resetting").run
    _step(h)
    assert h.states("resetting", reset.run_id) == {"again": "up_for_reschedule"}
    assert h.tis("quick", "fixed_run")["read"].try_number == 2  # cleared and run again
    _step(h, 30)
    assert h.states("resetting", reset.run_id) == {"again": "success"}

    skip = h.runs.trigger("skipping").run
    _step(h)
    ti = h.tis("skipping", skip.run_id)["once"]
    assert ti.state is TaskState.SKIPPED and ti.wait is None
    assert _runs(h, "quick") == ["fixed_run"]


def test_a_triggered_run_deleted_while_waiting_fails_the_task_naming_it(
    harness: Harness,
) -> None:
    h = harness
    h.write_dag("dags", DAGS)
    run = h.runs.trigger("waiter").run
    _step(h)
    (target,) = _runs(h, "slow")
    RunChangeService(h.db, clock=h.clock, plans=h.plans).delete_run("slow", target)
    _step(h, 30)
    assert h.states("waiter", run.run_id) == {"go": "failed"}
    error = h.tries("waiter", run.run_id, "go")[-1].error or ""
    assert f"run {target!r} of DAG 'slow'" in error and "no longer exists" in error


def test_deferrable_without_wait_for_completion_does_not_wait(harness: Harness) -> None:
    h = harness
    h.write_dag("dags", DAGS)
    run = h.runs.trigger("no_wait").run
    _step(h)
    ti = h.tis("no_wait", run.run_id)["fire"]
    assert ti.state is TaskState.SUCCESS and ti.wait is None
    (target,) = _runs(h, "slow")
    assert h.run("slow", target).state.value == "running"  # its sensor still waits
