"""Where a sensor's timeout is counted from across its tries, through the scheduler on a frozen
clock: in reschedule mode a retry keeps counting from the first try's first poke (as Airflow)
and a clear counts afresh; in poke mode each try counts from its own start."""

from __future__ import annotations

from datetime import timedelta

from slipstream.core.states import TaskState
from slipstream.services.run_changes import RunChangeService
from slipstream.wakeup import Hint
from tests.scheduler.conftest import START, Harness

RETRIED = """
    from datetime import datetime, timedelta
    from pathlib import Path
    from slipstream import DAG
    from airflow.sensors.base import BaseSensorOperator

    HERE = Path(__file__).parent

    class Flaky(BaseSensorOperator):
        def poke(self, context):
            if (HERE / "boom").exists():
                raise RuntimeError("poke broke")
            return (HERE / "ready").exists()

    with DAG("retried", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        Flaky(task_id="wait", mode="MODE", poke_interval=INTERVAL, timeout=300, retries=2,
              retry_delay=timedelta(seconds=60))
"""


def _retried(mode: str, interval: float = 30) -> str:
    return RETRIED.replace("MODE", mode).replace("INTERVAL", repr(interval))


def test_a_retried_reschedule_mode_sensor_times_out_from_its_first_try_first_poke(
    harness: Harness,
) -> None:
    h = harness
    h.write_dag("retried", _retried("reschedule"))
    run = h.runs.trigger("retried").run
    h.settle((Hint.queued_run("retried"),))
    ti = h.tis("retried", run.run_id)["wait"]
    assert ti.state is TaskState.UP_FOR_RESCHEDULE and ti.sensor_started_at == START

    # The second poke raises: a normal failure, retried after retry_delay.
    (h.dags_folder / "boom").write_text("")
    h.clock.advance(30)
    h.settle()
    ti = h.tis("retried", run.run_id)["wait"]
    assert ti.state is TaskState.UP_FOR_RETRY and ti.try_number == 1
    assert ti.next_retry_at == START + timedelta(seconds=90)
    (h.dags_folder / "boom").unlink()

    # Try 2 pokes at 90 s: its timeout is still counted from try 1's first poke (at 0 s).
    h.clock.advance(60)
    h.settle()
    ti = h.tis("retried", run.run_id)["wait"]
    assert ti.state is TaskState.UP_FOR_RESCHEDULE and ti.try_number == 2
    assert ti.wait is not None and ti.wait.started_at == START
    assert ti.wait.timeout_at == START + timedelta(seconds=300)
    assert ti.sensor_started_at == START
    for _ in range(6):  # pokes at 120 ... 270 s
        h.clock.advance(30)
        h.settle()
    ti = h.tis("retried", run.run_id)["wait"]
    assert ti.state is TaskState.UP_FOR_RESCHEDULE and ti.wake_target is TaskState.FAILED
    assert ti.wake_at == START + timedelta(seconds=300)
    h.clock.advance(30)
    h.settle()
    ti = h.tis("retried", run.run_id)["wait"]
    # AirflowSensorTimeout: failed at 300 s, not retried (try 3 is never started).
    assert ti.state is TaskState.FAILED and ti.try_number == 2
    assert ti.end_date == START + timedelta(seconds=300)
    assert ti.state_reason is not None and "AirflowSensorTimeout" in ti.state_reason

    # A clear starts a new set of tries: the timeout is counted afresh from its first poke.
    h.clock.advance(100)
    cleared_at = h.clock.now()
    RunChangeService(h.db, clock=h.clock, plans=h.plans).clear_task_instances(
        "retried", run_id=run.run_id, task_ids=["wait"], dry_run=False, by="tester"
    )
    assert h.tis("retried", run.run_id)["wait"].sensor_started_at is None
    h.settle()
    ti = h.tis("retried", run.run_id)["wait"]
    assert ti.state is TaskState.UP_FOR_RESCHEDULE and ti.try_number == 3
    assert ti.wait is not None and ti.wait.started_at == cleared_at
    assert ti.wait.timeout_at == cleared_at + timedelta(seconds=300)
    assert ti.sensor_started_at == cleared_at


def test_a_retry_right_after_a_first_try_that_never_waited_counts_from_its_own_poke(
    harness: Harness,
) -> None:
    h = harness
    (h.dags_folder / "boom").write_text("")
    h.write_dag("retried", _retried("reschedule"))
    run = h.runs.trigger("retried").run
    h.settle((Hint.queued_run("retried"),))
    ti = h.tis("retried", run.run_id)["wait"]
    assert ti.state is TaskState.UP_FOR_RETRY and ti.sensor_started_at is None
    (h.dags_folder / "boom").unlink()
    h.clock.advance(60)
    h.settle()
    ti = h.tis("retried", run.run_id)["wait"]
    assert ti.state is TaskState.UP_FOR_RESCHEDULE and ti.try_number == 2
    later = START + timedelta(seconds=60)
    assert ti.wait is not None and ti.wait.started_at == later
    assert ti.wait.timeout_at == later + timedelta(seconds=300)


def test_a_retried_poke_mode_sensor_counts_its_timeout_from_the_new_try(
    harness: Harness,
) -> None:
    h = harness
    # Try 1 raises at 0 s; try 2 starts at 600 s, past a timeout counted from try 1 (300 s).
    (h.dags_folder / "boom").write_text("")
    h.write_dag("retried", _retried("poke", interval=0.01).replace("seconds=60", "seconds=600"))
    run = h.runs.trigger("retried").run
    h.settle((Hint.queued_run("retried"),))
    assert h.tis("retried", run.run_id)["wait"].state is TaskState.UP_FOR_RETRY
    (h.dags_folder / "boom").unlink()
    (h.dags_folder / "ready").write_text("")
    h.clock.advance(600)
    h.settle()
    ti = h.tis("retried", run.run_id)["wait"]
    assert ti.state is TaskState.SUCCESS and ti.try_number == 2
