"""dagrun_timeout through the scheduler: a run still running once its timeout has passed fails
with a reason and its unfinished tasks are skipped; the scheduler wakes for the deadline."""

from __future__ import annotations

from slipstream.core.states import RunState
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness

RETRYING = """
    from datetime import datetime, timedelta
    from slipstream import DAG
    from slipstream.authoring.operators import PythonOperator

    def boom():
        raise RuntimeError("not yet")

    with DAG("slow", schedule=None, start_date=datetime(2024, 1, 1),
             dagrun_timeout=timedelta(minutes=5)) as dag:
        done = PythonOperator(task_id="done", python_callable=print)
        waiting = PythonOperator(task_id="waiting", python_callable=boom, retries=3,
                                 retry_delay=timedelta(hours=1))
        never = PythonOperator(task_id="never", python_callable=print)
        done >> waiting >> never
"""


def test_a_run_past_its_dagrun_timeout_fails_and_skips_what_is_unfinished(
    harness: Harness,
) -> None:
    harness.write_dag("slow", RETRYING)
    run = harness.runs.trigger("slow").run
    harness.settle((Hint.queued_run("slow"),))
    assert harness.states("slow", run.run_id)["waiting"] == "up_for_retry"
    harness.clock.advance(299)
    harness.settle()
    assert harness.run("slow", run.run_id).state is RunState.RUNNING
    # The loop's next wake-up is the deadline, a second away (heartbeat and safety scan just
    # ran, the retry is an hour off): a timer, not a poll.
    assert harness.scheduler.seconds_until_due() == 1.0

    harness.clock.advance(2)
    harness.settle()
    ended = harness.run("slow", run.run_id)
    assert ended.state is RunState.FAILED
    assert ended.state_reason == "dagrun_timeout of 300s exceeded"
    assert harness.states("slow", run.run_id) == {
        "done": "success",
        "waiting": "skipped",
        "never": "skipped",
    }
    reason = harness.tis("slow", run.run_id)["never"].state_reason
    assert reason is not None and "dagrun_timeout" in reason


def test_a_run_within_its_timeout_is_untouched(harness: Harness) -> None:
    harness.write_dag("slow", RETRYING.replace("minutes=5", "days=5"))
    run = harness.runs.trigger("slow").run
    harness.settle((Hint.queued_run("slow"),))
    harness.clock.advance(3600)
    harness.settle()
    assert harness.run("slow", run.run_id).state is RunState.RUNNING
    assert harness.states("slow", run.run_id)["waiting"] == "up_for_retry"
