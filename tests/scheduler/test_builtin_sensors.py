"""The built-in sensors through the scheduler (real database, DAG files parsed in child
processes, inline executor, frozen clock), written in Airflow 1.10, 2.x and 3.x idiom; and
200 reschedule-mode sensors waiting at once hold no executor slot."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from slipstream.core.states import RunState, TaskState
from slipstream.store.db import Database
from slipstream.wakeup import Hint
from tests.scheduler.conftest import START, Harness

AIRFLOW_3 = """
    from datetime import datetime
    from pathlib import Path
    from airflow.sdk import DAG, task, PokeReturnValue
    from airflow.providers.standard.sensors.bash import BashSensor
    from airflow.providers.standard.sensors.python import PythonSensor
    from airflow.providers.standard.sensors.filesystem import FileSensor
    from airflow.providers.standard.sensors.date_time import DateTimeSensor
    from airflow.providers.standard.sensors.weekday import DayOfWeekSensor

    HERE = Path(__file__).parent

    def flag_is_up(name):
        return (HERE / name).exists()

    with DAG("modern", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        py = PythonSensor(task_id="py", python_callable=flag_is_up, op_args=["py_flag"],
                          mode="reschedule", poke_interval=10)
        sh = BashSensor(task_id="sh", bash_command=f"test -e {HERE}/sh_flag",
                        mode="reschedule", poke_interval=10)
        fs = FileSensor(task_id="fs", filepath="data/*.csv", mode="reschedule",
                        poke_interval=10)
        at = DateTimeSensor(task_id="at",
                            target_time="{{ (macros.datetime(2026, 1, 10, 12, 1)).isoformat() }}Z")
        day = DayOfWeekSensor(task_id="day", week_day="Saturday", mode="reschedule",
                              poke_interval=10)

        @task.sensor(poke_interval=10, timeout=60, mode="reschedule")
        def decorated():
            done = (HERE / "py_flag").exists()
            return PokeReturnValue(is_done=done, xcom_value="seen" if done else None)

        decorated()
"""


def test_airflow_3_sensors_wait_without_a_process_then_succeed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = harness.dags_folder
    connection = f'{{"conn_type": "fs", "extra": {{"path": "{base}"}}}}'
    monkeypatch.setenv("AIRFLOW_CONN_FS_DEFAULT", connection)
    harness.write_dag("modern", AIRFLOW_3)
    run = harness.runs.trigger("modern").run
    harness.settle((Hint.queued_run("modern"),))
    states = harness.states("modern", run.run_id)
    # 2026-01-10 is a Saturday: the week-day sensor is done at its first poke.
    assert states == {
        "py": "up_for_reschedule",
        "sh": "up_for_reschedule",
        "fs": "up_for_reschedule",
        "at": "deferred",
        "day": "success",
        "decorated": "up_for_reschedule",
    }
    assert harness.tis("modern", run.run_id)["at"].wake_at == START + timedelta(minutes=1)
    (base / "py_flag").touch()
    (base / "sh_flag").touch()
    (base / "data").mkdir()
    (base / "data" / "x.csv").write_text("1\n")
    harness.clock.advance(10)
    harness.settle()
    states = harness.states("modern", run.run_id)
    assert states["at"] == "deferred"
    assert {t: s for t, s in states.items() if t != "at"} == dict.fromkeys(
        ["py", "sh", "fs", "day", "decorated"], "success"
    )
    harness.clock.advance(50)
    harness.settle()
    ti = harness.tis("modern", run.run_id)["at"]
    # Ended by the scheduler at its moment: one try, no second run of it.
    assert ti.state is TaskState.SUCCESS and ti.end_date == START + timedelta(minutes=1)
    assert [t.state for t in harness.tries("modern", run.run_id, "at")] == [TaskState.SUCCESS]
    assert harness.run("modern", run.run_id).state is RunState.SUCCESS


AIRFLOW_2 = """
    from datetime import datetime, timedelta
    from airflow import DAG
    from airflow.sensors.external_task import ExternalTaskSensor
    from airflow.sensors.time_delta import TimeDeltaSensor
    from airflow.operators.python import PythonOperator

    with DAG("upstream", schedule=None, start_date=datetime(2024, 1, 1)) as up:
        PythonOperator(task_id="produce", python_callable=print)

    with DAG("downstream", schedule=None, start_date=datetime(2024, 1, 1)) as down:
        wait = ExternalTaskSensor(task_id="wait", external_dag_id="upstream",
                                  external_task_id="produce", mode="reschedule",
                                  poke_interval=5, check_existence=True)
        later = TimeDeltaSensor(task_id="later", delta=timedelta(seconds=30))
        wait >> later
"""


def test_airflow_2_external_task_and_time_delta_sensors(harness: Harness) -> None:
    harness.write_dag("cross", AIRFLOW_2)
    logical = START - timedelta(hours=1)
    down = harness.runs.trigger("downstream", logical_date=logical).run
    harness.settle((Hint.queued_run("downstream"),))
    assert harness.states("downstream", down.run_id)["wait"] == "up_for_reschedule"
    up = harness.runs.trigger("upstream", logical_date=logical).run
    harness.settle((Hint.queued_run("upstream"),))
    assert harness.states("upstream", up.run_id) == {"produce": "success"}
    harness.clock.advance(5)
    harness.settle()
    states = harness.states("downstream", down.run_id)
    assert states["wait"] == "success"
    # The run's data interval ended at its logical date (a manual run), an hour ago: the
    # delta has long passed, so the sensor is done at once.
    assert states["later"] == "success"


LEGACY = """
    from datetime import datetime
    from airflow import DAG
    from airflow.sensors.base_sensor_operator import BaseSensorOperator

    class Never(BaseSensorOperator):
        def poke(self, context):
            return False

    dag = DAG("legacy", schedule_interval=None, start_date=datetime(2024, 1, 1))
    Never(task_id="never", mode="reschedule", poke_interval=20, timeout=50, dag=dag,
          retries=3)
"""


def test_airflow_1_10_sensor_times_out_without_retrying(harness: Harness) -> None:
    harness.write_dag("legacy", LEGACY)
    run = harness.runs.trigger("legacy").run
    harness.settle((Hint.queued_run("legacy"),))
    for seconds in (20, 20, 10):
        harness.clock.advance(seconds)
        harness.settle()
    ti = harness.tis("legacy", run.run_id)["never"]
    assert ti.state is TaskState.FAILED  # a sensor's timeout uses no retry
    assert ti.try_number == 1 and ti.end_date == START + timedelta(seconds=50)


POKE_ERROR = """
    from datetime import datetime, timedelta
    from airflow.sdk import DAG
    from airflow.sdk.bases.sensor import BaseSensorOperator

    class Broken(BaseSensorOperator):
        def poke(self, context):
            raise RuntimeError("poke broke")

    with DAG("broken", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        Broken(task_id="b", mode="reschedule", retries=1, retry_delay=timedelta(seconds=1))
"""


def test_a_poke_that_raises_is_a_normal_failure_with_retries(harness: Harness) -> None:
    harness.write_dag("broken", POKE_ERROR)
    run = harness.runs.trigger("broken").run
    harness.settle((Hint.queued_run("broken"),))
    assert harness.states("broken", run.run_id) == {"b": "up_for_retry"}
    harness.clock.advance(1)
    harness.settle()
    ti = harness.tis("broken", run.run_id)["b"]
    assert ti.state is TaskState.FAILED and ti.try_number == 2
    assert ti.state_reason is not None and "poke broke" in ti.state_reason


MANY = """
    from datetime import datetime
    from airflow.sdk import DAG
    from airflow.providers.standard.sensors.python import PythonSensor
    from airflow.providers.standard.operators.python import PythonOperator

    with DAG("many", schedule=None, start_date=datetime(2024, 1, 1),
             max_active_tasks=1000) as dag:
        for i in range(200):
            PythonSensor(task_id=f"s{i}", python_callable=lambda: False,
                         mode="reschedule", poke_interval=3600)

    with DAG("normal", schedule=None, start_date=datetime(2024, 1, 1)) as other:
        PythonOperator(task_id="work", python_callable=print)
"""


@pytest.mark.slow
def test_200_waiting_sensors_hold_no_worker_slot(db: Database, tmp_path: Path) -> None:
    harness = Harness(db, tmp_path, parallelism=2)
    harness.scheduler.start()
    harness.write_dag("many", MANY)
    run = harness.runs.trigger("many").run
    harness.settle((Hint.queued_run("many"),), max_passes=500)
    states = harness.states("many", run.run_id)
    assert set(states.values()) == {"up_for_reschedule"} and len(states) == 200
    assert not harness.scheduler._state.in_flight
    other = harness.runs.trigger("normal").run
    report = harness.scheduler.tick([Hint.queued_run("normal")])
    assert report.queued == 1  # started in the very next pass: both slots are free
    harness.settle()
    assert harness.states("normal", other.run_id) == {"work": "success"}
