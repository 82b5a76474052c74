"""A deferral's timeout through the scheduler, on a frozen clock: an operator that is not a
sensor fails as TaskDeferralTimeout under its retry policy (up_for_retry after retry_delay,
with on_retry_callback; failed with on_failure_callback once no retries are left), as
Airflow; a sensor's deferral timeout is AirflowSensorTimeout (failed without retry, or
skipped with soft_fail)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from slipstream.core.records import ExitReason
from slipstream.core.states import RunState, TaskState
from slipstream.wakeup import Hint
from tests.scheduler.conftest import START, Harness

DEFERS = """
import json
from datetime import datetime, timedelta
from slipstream import DAG
from airflow.models.baseoperator import BaseOperator
from airflow.sensors.base import BaseSensorOperator
from airflow.triggers.temporal import DateTimeTrigger

OUT = {out!r}

def record(name):
    def callback(context):
        exc = context.get("exception")
        line = {{
            "cb": name,
            "task": context["task"].task_id,
            "try": context["ti"].try_number,
            "exception": None if exc is None else f"{{type(exc).__name__}}: {{exc}}",
        }}
        with open(OUT, "a") as f:
            f.write(json.dumps(line) + "\\n")
    return callback

def defer_long(op, context):
    moment = context["ti"].clock.now() + timedelta(seconds=600)
    op.defer(trigger=DateTimeTrigger(moment), method_name="done",
             timeout=timedelta(seconds=60))

class Waits(BaseOperator):
    def execute(self, context):
        defer_long(self, context)

    def done(self, context, event=None):
        return "resumed"

class WaitingSensor(BaseSensorOperator):
    def execute(self, context):
        defer_long(self, context)

    def done(self, context, event=None):
        return "resumed"

CALLBACKS = dict(on_retry_callback=record("retry"), on_failure_callback=record("failure"))
with DAG("defers", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    Waits(task_id="op", retries=1, retry_delay=timedelta(seconds=30), **CALLBACKS)
    WaitingSensor(task_id="sensor", retries=2, **CALLBACKS)
    WaitingSensor(task_id="soft", retries=2, soft_fail=True, **CALLBACKS)
"""


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _log(harness: Harness, run_id: str, task_id: str, try_number: int) -> str:
    path = harness.settings.log_folder / "defers" / run_id / task_id / f"{try_number}.log"
    return path.read_text()


def _scheduler_line(text: str) -> str:
    """The line the scheduler wrote into a try's log (it ended the try; no process did)."""
    [line] = [line for line in text.splitlines() if "{scheduler}" in line]
    return line


def test_a_non_sensor_deferral_timeout_uses_the_tasks_retries_and_callbacks(
    harness: Harness, tmp_path: Path
) -> None:
    h, out = harness, tmp_path / "calls.jsonl"
    h.write_dag("defers", DEFERS.format(out=str(out)))
    run = h.runs.trigger("defers").run
    h.settle((Hint.queued_run("defers"),))
    tis = h.tis("defers", run.run_id)
    assert {t: ti.state for t, ti in tis.items()} == dict.fromkeys(tis, TaskState.DEFERRED)
    # The timeout (60 s) comes before the trigger's moment (600 s); the wait says what then.
    assert tis["op"].wake_at == START + timedelta(seconds=60)
    assert tis["op"].wake_target is TaskState.UP_FOR_RETRY
    assert tis["sensor"].wake_target is TaskState.FAILED
    assert tis["soft"].wake_target is TaskState.SKIPPED

    h.clock.advance(60)
    h.settle()
    tis = h.tis("defers", run.run_id)
    op = tis["op"]
    assert op.state is TaskState.UP_FOR_RETRY and op.try_number == 1
    assert op.next_retry_at == START + timedelta(seconds=90)
    assert op.state_reason is not None and op.state_reason.startswith("TaskDeferralTimeout")
    assert op.wait is None and op.wake_at is None
    [first] = h.tries("defers", run.run_id, "op")
    assert first.state is TaskState.FAILED and first.exit_reason is ExitReason.TASK_ERROR
    note = _scheduler_line(_log(h, run.run_id, "op", 1))
    assert "{scheduler} ERROR - TaskDeferralTimeout: Trigger/execution timeout" in note, note
    assert note.endswith(
        f"the task is retried as try 2 at {(START + timedelta(seconds=90)).isoformat()}"
    ), note
    # The callback ran for the try, after the scheduler's line.
    assert "Executing on_retry_callback[0] callback of task 'op'" in _log(h, run.run_id, "op", 1)
    # A sensor's deferral timeout is AirflowSensorTimeout: no retry though it has retries
    # left; with soft_fail it skips.
    assert tis["sensor"].state is TaskState.FAILED and tis["sensor"].try_number == 1
    assert tis["sensor"].state_reason is not None
    assert "AirflowSensorTimeout" in tis["sensor"].state_reason
    assert tis["soft"].state is TaskState.SKIPPED and tis["soft"].try_number == 1
    calls = [(c["cb"], c["task"], c["try"]) for c in _lines(out)]
    assert sorted(calls) == [("failure", "sensor", 1), ("retry", "op", 1)]
    retry = next(c for c in _lines(out) if c["cb"] == "retry")
    assert retry["exception"] is not None and "TaskDeferralTimeout" in retry["exception"]

    # Not before retry_delay has passed.
    h.clock.advance(29)
    h.settle()
    assert h.tis("defers", run.run_id)["op"].state is TaskState.UP_FOR_RETRY
    h.clock.advance(1)
    h.settle()
    op = h.tis("defers", run.run_id)["op"]
    assert op.state is TaskState.DEFERRED and op.try_number == 2
    assert op.wake_at == START + timedelta(seconds=150)

    # Try 2 times out too, with no retries left: failed, with on_failure_callback.
    h.clock.advance(60)
    h.settle()
    op = h.tis("defers", run.run_id)["op"]
    assert op.state is TaskState.FAILED and op.try_number == 2
    assert op.end_date == START + timedelta(seconds=150)
    assert op.state_reason is not None and op.state_reason.startswith("TaskDeferralTimeout")
    assert [t.state for t in h.tries("defers", run.run_id, "op")] == [TaskState.FAILED] * 2
    note = _scheduler_line(_log(h, run.run_id, "op", 2))
    assert note.endswith("; the task failed (no retries left)"), note
    assert [(c["cb"], c["task"], c["try"]) for c in _lines(out)][-1] == ("failure", "op", 2)
    assert h.run("defers", run.run_id).state is RunState.FAILED


def test_a_deferral_timeout_survives_a_scheduler_restart_with_its_retry_policy(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    h.write_dag("defers", DEFERS.format(out=str(tmp_path / "calls.jsonl")))
    run = h.runs.trigger("defers").run
    h.settle((Hint.queued_run("defers"),))
    h.scheduler.stop()
    h.clock.advance(75)
    h.scheduler = h.new_scheduler()
    h.scheduler.start()
    h.settle()
    op = h.tis("defers", run.run_id)["op"]
    # Woken late (75 s): the retry is due retry_delay after the wake-up that decided it.
    assert op.state is TaskState.UP_FOR_RETRY and op.try_number == 1
    assert op.next_retry_at == START + timedelta(seconds=105)
