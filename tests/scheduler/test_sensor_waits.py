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


AUDIT = """
    from datetime import datetime, timedelta, timezone
    from airflow import DAG
    from airflow.models.baseoperator import BaseOperator
    from airflow.operators.python import PythonOperator
    from airflow.sensors.base import BaseSensorOperator
    from airflow.sensors.date_time import DateTimeSensorAsync
    from airflow.sensors.time_delta import TimeDeltaSensorAsync
    from airflow.triggers.temporal import DateTimeTrigger

    class Never(BaseSensorOperator):
        def poke(self, context):
            return False

    class BreaksLater(BaseSensorOperator):
        def poke(self, context):
            if context["ti"].poke_count >= 1:
                raise RuntimeError("poke broke")
            return False

    class PastTrigger(BaseOperator):
        def execute(self, context):
            moment = datetime(2020, 1, 1, tzinfo=timezone.utc)
            self.defer(trigger=DateTimeTrigger(moment), method_name="done")

        def done(self, context, event=None):
            print(f"RESUMED at {event.isoformat()}")

    WAIT = dict(mode="reschedule", poke_interval=20, timeout=50)
    with DAG("audit", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        Never(task_id="times_out", retries=2, **WAIT)
        Never(task_id="soft", soft_fail=True, **WAIT)
        BreaksLater(task_id="raises", **WAIT)
        DateTimeSensorAsync(task_id="past_moment", target_time="2020-01-01T00:00:00+00:00")
        TimeDeltaSensorAsync(task_id="past_delta", delta=timedelta(seconds=-5))
        PastTrigger(task_id="past_trigger")
        DateTimeSensorAsync(task_id="garbage", target_time="{{ 'not a date' }}")
        DateTimeSensorAsync(task_id="moment", target_time="{{ macros.ds_add(ds, 1) }}")

    with DAG("still_served", schedule=None, start_date=datetime(2024, 1, 1)) as other:
        PythonOperator(task_id="work", python_callable=print)
"""


def _log(harness: Harness, run_id: str, task_id: str, try_number: int = 1) -> str:
    path = harness.settings.log_folder / "audit" / run_id / task_id / f"{try_number}.log"
    return path.read_text()


def test_bad_sensor_inputs_end_the_try_with_its_state_and_a_clear_line_in_its_log(
    harness: Harness,
) -> None:
    harness.write_dag("audit", AUDIT)
    run = harness.runs.trigger("audit").run
    harness.settle((Hint.queued_run("audit"),))
    # A deferral whose moment has passed is woken at once and resumes at its method.
    harness.settle()
    for seconds in (20, 20, 10):
        harness.clock.advance(seconds)
        harness.settle()
    harness.clock.advance(timedelta(days=1))
    harness.settle()
    tis = harness.tis("audit", run.run_id)
    assert {task_id: ti.state.value for task_id, ti in tis.items()} == {
        "times_out": "failed",
        "soft": "skipped",
        "raises": "failed",
        "past_moment": "success",
        "past_delta": "success",
        "past_trigger": "success",
        "garbage": "failed",
        "moment": "success",
    }
    assert all(ti.try_number == 1 for ti in tis.values())  # a sensor's timeout: no retry

    # Ended by the scheduler while waiting: the try's log says so, last.
    ended = {
        "times_out": "{scheduler} ERROR - AirflowSensorTimeout: the sensor's timeout passed "
        "while it waited; the task failed (a sensor's timeout is not retried)",
        "soft": "{scheduler} WARNING - the sensor's timeout passed while it waited "
        "(soft_fail: skipped); the task is skipped",
        "moment": "{scheduler} INFO - the time it waited for has come; the task succeeded",
    }
    for task_id, line in ended.items():
        last = _log(harness, run.run_id, task_id).rstrip().splitlines()[-1]
        assert last.endswith(line), (task_id, last)
    # Ended by the try itself: its own words.
    raised = _log(harness, run.run_id, "raises")
    assert "poke 1 not met" in raised and "RuntimeError: poke broke" in raised
    assert "Marking try as FAILED (task_error)" in raised
    for task_id in ("past_moment", "past_delta"):
        text = _log(harness, run.run_id, task_id)
        assert "has passed: done" in text and "deferred until" not in text, text
        assert "Marking try as SUCCESS" in text
    resumed = _log(harness, run.run_id, "past_trigger")
    assert "RESUMED at 2020-01-01T00:00:00+00:00" in resumed, resumed
    garbage = _log(harness, run.run_id, "garbage")
    assert "ValueError: target_time of sensor 'garbage' is not a date and time: 'not a date'" in (
        garbage
    )
    assert tis["garbage"].state_reason is not None
    assert "target_time of sensor 'garbage'" in tis["garbage"].state_reason

    # The scheduler carries on: another DAG's run is served as ever.
    other = harness.runs.trigger("still_served").run
    harness.settle((Hint.queued_run("still_served"),))
    assert harness.run("still_served", other.run_id).state is RunState.SUCCESS
