"""A wait the scheduler ends itself still calls the task's callbacks as Airflow's try would:
on_skipped_callback when a soft_fail sensor's timeout passes (Airflow raises a skip there, in
the task), with no process for the wait; a time sensor with an on_success_callback resumes in a
process at its moment, so that callback runs too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slipstream.core.states import TaskState
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness

ENDS = """
import json
from datetime import datetime, timedelta
from slipstream import DAG
from airflow.sensors.base import BaseSensorOperator
from airflow.sensors.date_time import DateTimeSensor

OUT = {out!r}

def record(name):
    def callback(context):
        exc = context.get("exception")
        line = {{"cb": name, "task": context["task"].task_id, "try": context["ti"].try_number,
                 "exception": None if exc is None else type(exc).__name__}}
        with open(OUT, "a") as f:
            f.write(json.dumps(line) + "\\n")
    return callback

MOMENT = "{{{{ (logical_date + macros.timedelta(seconds=60)).isoformat() }}}}"

class Never(BaseSensorOperator):
    def poke(self, context):
        return False

CALLBACKS = dict(on_success_callback=record("success"), on_skipped_callback=record("skipped"),
                 on_failure_callback=record("failure"))
with DAG("ends", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    DateTimeSensor(task_id="moment", target_time=MOMENT, mode="reschedule", **CALLBACKS)
    Never(task_id="soft", mode="reschedule", poke_interval=30, timeout=90, soft_fail=True,
          **CALLBACKS)
"""


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_soft_fail_timeout_calls_on_skipped_and_a_time_sensor_resumes_for_on_success(
    harness: Harness, tmp_path: Path
) -> None:
    out = tmp_path / "callbacks.jsonl"
    harness.write_dag("ends", ENDS.format(out=str(out)))
    run = harness.runs.trigger("ends").run
    harness.settle((Hint.queued_run("ends"),))
    tis = harness.tis("ends", run.run_id)
    assert tis["moment"].state is TaskState.DEFERRED  # a time sensor waits deferred
    assert tis["moment"].wake_target is TaskState.SCHEDULED  # resumes: a callback to run
    assert tis["soft"].state is TaskState.UP_FOR_RESCHEDULE
    assert _lines(out) == []

    for _ in range(4):  # to 120 s: the moment at 60 s, the soft sensor's timeout at 90 s
        harness.clock.advance(30)
        harness.settle()
    for _ in range(6):  # the callback requests run and report
        harness.settle()
    assert harness.states("ends", run.run_id) == {"moment": "success", "soft": "skipped"}
    got = sorted(_lines(out), key=lambda line: str(line["task"]))
    assert got == [
        {"cb": "success", "task": "moment", "try": 1, "exception": None},
        {"cb": "skipped", "task": "soft", "try": 1, "exception": None},
    ]
