"""Sensors through `slipstream dags test` in real time (short intervals): a reschedule-mode
sensor pokes until its condition holds, a deferred time sensor ends at its moment, a poke-mode
sensor times out, and `tasks states-for-dag-run`-style output shows the waiting states."""

from __future__ import annotations

from tests.cli.conftest import Cli

SENSORS = """
    from datetime import datetime, timedelta, timezone
    from pathlib import Path
    from airflow.sdk import DAG, task
    from airflow.providers.standard.sensors.python import PythonSensor
    from airflow.providers.standard.sensors.date_time import DateTimeSensor

    started = datetime.now(timezone.utc)

    def third_time(ti):
        return ti.poke_count >= 2

    with DAG("sensing", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        poked = PythonSensor(task_id="poked", python_callable=third_time, mode="reschedule",
                             poke_interval=0.2, timeout=30)
        moment = DateTimeSensor(task_id="moment",
                                target_time=(started + timedelta(seconds=1)).isoformat())

        @task
        def after():
            print("AFTER RAN")

        [poked, moment] >> after()
"""

TIMING_OUT = """
    from datetime import datetime
    from airflow.sensors.base import BaseSensorOperator

    from airflow import DAG

    class Never(BaseSensorOperator):
        def poke(self, context):
            return False

    with DAG("timing_out", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        Never(task_id="never", poke_interval=0.1, timeout=0.5, retries=2)
"""


def test_dags_test_runs_sensors_to_their_end(slipstream: Cli) -> None:
    slipstream.write_dag("sensing", SENSORS)
    result = slipstream("dags", "test", "sensing")
    assert result.exit_code == 0, result.output
    assert "AFTER RAN" in result.output
    assert "poke 1 not met; next poke at" in result.output
    assert "deferred until" in result.output


def test_dags_test_poke_mode_sensor_times_out_without_retrying(slipstream: Cli) -> None:
    slipstream.write_dag("timing_out", TIMING_OUT)
    result = slipstream("dags", "test", "timing_out")
    assert result.exit_code == 1
    assert "AirflowSensorTimeout" in result.output
    assert "Sensor has timed out" in result.output
    assert "try 2" not in result.output  # a sensor's timeout is not retried
