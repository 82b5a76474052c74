"""Sensors and deferrals through the scheduler, on a frozen clock: reschedule mode waits as
up_for_reschedule with no process and the same try number, time deferrals wait as deferred and
are ended by the scheduler itself, and a timeout that passes while waiting ends the task on time
(failed, or skipped with soft_fail); a restarted scheduler keeps the same wake-ups."""

from __future__ import annotations

from datetime import timedelta

from slipstream.core.states import RunState, TaskState
from slipstream.services.xcoms import XComReader
from slipstream.wakeup import Hint
from tests.scheduler.conftest import START, Harness

RESCHEDULING = """
    from datetime import datetime
    from pathlib import Path
    from slipstream import DAG
    from airflow.sensors.base import BaseSensorOperator, PokeReturnValue
    from slipstream.authoring.operators import PythonOperator

    FLAG = Path(__file__).with_name("flag")

    class FlagSensor(BaseSensorOperator):
        def poke(self, context):
            if FLAG.exists():
                return PokeReturnValue(True, FLAG.read_text())
            return False

    with DAG("waits", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        wait = FlagSensor(task_id="wait", mode="reschedule", poke_interval=30, timeout=300,
                          SOFT)
        after = PythonOperator(task_id="after", python_callable=print)
        wait >> after
"""


def _xcom(harness: Harness, run_pk: int, task_id: str) -> str | None:
    reader = XComReader(harness.db.url)
    try:
        return reader.pull(run_pk, [task_id], "return_value").get(task_id)
    finally:
        reader.close()


def _rescheduling(soft_fail: bool = False) -> str:
    return RESCHEDULING.replace("SOFT", f"soft_fail={soft_fail}")


def test_a_reschedule_mode_sensor_waits_without_a_process_and_keeps_its_try(
    harness: Harness,
) -> None:
    harness.write_dag("waits", _rescheduling())
    run = harness.runs.trigger("waits").run
    harness.settle((Hint.queued_run("waits"),))
    ti = harness.tis("waits", run.run_id)["wait"]
    assert ti.state is TaskState.UP_FOR_RESCHEDULE
    assert ti.try_number == 1
    assert ti.wake_at == START + timedelta(seconds=30)
    assert ti.wait is not None and ti.wait.started_at == START and ti.wait.pokes == 1
    assert ti.state_reason is not None and "next poke at" in ti.state_reason
    # Nothing in flight: the wait holds no executor slot; the loop sleeps until the wake-up.
    assert harness.executor.capacity == 32 and not harness.scheduler._state.in_flight
    assert harness.scheduler.seconds_until_due() <= 30.0

    harness.clock.advance(29)
    harness.settle()
    assert harness.tis("waits", run.run_id)["wait"].state is TaskState.UP_FOR_RESCHEDULE

    harness.clock.advance(1)
    harness.settle()
    ti = harness.tis("waits", run.run_id)["wait"]
    assert ti.state is TaskState.UP_FOR_RESCHEDULE
    assert ti.try_number == 1  # a reschedule is the same try
    assert ti.wait is not None and ti.wait.pokes == 2 and ti.wait.started_at == START
    assert [t.try_number for t in harness.tries("waits", run.run_id, "wait")] == [1]

    (harness.dags_folder / "flag").write_text("ready")
    harness.clock.advance(30)
    harness.settle()
    assert harness.states("waits", run.run_id) == {"wait": "success", "after": "success"}
    assert harness.run("waits", run.run_id).state is RunState.SUCCESS
    tries = harness.tries("waits", run.run_id, "wait")
    assert [(t.try_number, t.state) for t in tries] == [(1, TaskState.SUCCESS)]
    assert _xcom(harness, run.id, "wait") == '"ready"'  # PokeReturnValue's xcom_value
    ti = harness.tis("waits", run.run_id)["wait"]
    assert ti.wait is None and ti.wake_at is None and not ti.resumes_try


def test_a_timeout_passing_while_the_sensor_waits_fails_it_at_that_moment(
    harness: Harness,
) -> None:
    harness.write_dag("waits", _rescheduling())
    run = harness.runs.trigger("waits").run
    harness.settle((Hint.queued_run("waits"),))
    # Pokes at 0, 30, ... 270; the one due at 300 is the timeout itself.
    for _ in range(9):
        harness.clock.advance(30)
        harness.settle()
    ti = harness.tis("waits", run.run_id)["wait"]
    assert ti.state is TaskState.UP_FOR_RESCHEDULE and ti.wait is not None
    assert ti.wait.pokes == 10
    assert ti.wake_at == START + timedelta(seconds=300)
    assert ti.wake_target is TaskState.FAILED
    harness.clock.advance(30)
    harness.settle()
    ti = harness.tis("waits", run.run_id)["wait"]
    assert ti.state is TaskState.FAILED
    assert ti.end_date == START + timedelta(seconds=300)
    assert ti.state_reason is not None and "AirflowSensorTimeout" in ti.state_reason
    assert harness.states("waits", run.run_id)["after"] == "upstream_failed"
    assert harness.run("waits", run.run_id).state is RunState.FAILED
    [only] = harness.tries("waits", run.run_id, "wait")
    assert only.state is TaskState.FAILED and only.try_number == 1


def test_soft_fail_skips_the_sensor_when_its_timeout_passes(harness: Harness) -> None:
    harness.write_dag("waits", _rescheduling(soft_fail=True))
    run = harness.runs.trigger("waits").run
    harness.settle((Hint.queued_run("waits"),))
    harness.clock.advance(300)
    for _ in range(12):
        harness.settle()
    assert harness.states("waits", run.run_id) == {"wait": "skipped", "after": "skipped"}


def test_a_restarted_scheduler_keeps_the_wake_up_and_the_timeout_budget(
    harness: Harness,
) -> None:
    harness.write_dag("waits", _rescheduling())
    run = harness.runs.trigger("waits").run
    harness.settle((Hint.queued_run("waits"),))
    harness.scheduler.stop()
    harness.clock.advance(10)
    harness.scheduler = harness.new_scheduler()
    harness.scheduler.start()
    harness.settle()
    ti = harness.tis("waits", run.run_id)["wait"]
    assert ti.state is TaskState.UP_FOR_RESCHEDULE
    assert ti.wake_at == START + timedelta(seconds=30)
    assert 19.0 <= harness.scheduler.seconds_until_due() <= 20.0 or (
        harness.scheduler.seconds_until_due() <= 5.0  # the heartbeat or safety scan comes first
    )
    harness.clock.advance(20)
    harness.settle()
    ti = harness.tis("waits", run.run_id)["wait"]
    assert ti.wait is not None and ti.wait.pokes == 2 and ti.wait.started_at == START
    assert ti.try_number == 1


DEFERRING = """
    from datetime import datetime, timedelta
    from slipstream import DAG
    from airflow.models.baseoperator import BaseOperator
    from airflow.triggers.temporal import DateTimeTrigger

    class Later(BaseOperator):
        def execute(self, context):
            moment = context["ti"].clock.now() + timedelta(seconds=45)
            self.defer(trigger=DateTimeTrigger(moment), method_name="done",
                       kwargs={"note": "hello"})

        def done(self, context, event=None, note=None):
            return f"{note} at {event.isoformat()}"

    with DAG("defers", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        Later(task_id="later")
"""


def test_a_deferral_on_a_time_trigger_resumes_at_its_method_after_the_moment(
    harness: Harness,
) -> None:
    harness.write_dag("defers", DEFERRING)
    run = harness.runs.trigger("defers").run
    harness.settle((Hint.queued_run("defers"),))
    ti = harness.tis("defers", run.run_id)["later"]
    assert ti.state is TaskState.DEFERRED
    assert ti.wake_at == START + timedelta(seconds=45)
    harness.clock.advance(45)
    harness.settle()
    ti = harness.tis("defers", run.run_id)["later"]
    assert ti.state is TaskState.SUCCESS and ti.try_number == 1
    expected = f'"hello at {(START + timedelta(seconds=45)).isoformat()}"'
    assert _xcom(harness, run.id, "later") == expected


def test_deferring_on_another_trigger_fails_the_try_naming_it(harness: Harness) -> None:
    harness.write_dag(
        "defers",
        DEFERRING.replace(
            "self.defer(trigger=DateTimeTrigger(moment)",
            "self.defer(trigger=Custom()",
        ).replace(
            "class Later(BaseOperator):",
            "from airflow.triggers.base import BaseTrigger\n"
            "    class Custom(BaseTrigger):\n"
            "        pass\n\n"
            "    class Later(BaseOperator):",
        ),
    )
    run = harness.runs.trigger("defers").run
    harness.settle((Hint.queued_run("defers"),))
    ti = harness.tis("defers", run.run_id)["later"]
    assert ti.state is TaskState.FAILED
    assert ti.state_reason is not None and "Custom is not supported" in ti.state_reason
