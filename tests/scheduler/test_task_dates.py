"""A task's own start_date/end_date through the scheduler: outside them it is skipped."""

from __future__ import annotations

from slipstream.core.states import RunState
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness


def test_a_task_not_yet_started_is_skipped_with_a_reason(harness: Harness) -> None:
    harness.write_dag(
        "dated",
        """
        from datetime import datetime
        from slipstream import DAG
        from slipstream.authoring.operators import PythonOperator

        with DAG("dated", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
            now = PythonOperator(task_id="now", python_callable=print)
            later = PythonOperator(task_id="later", python_callable=print,
                                   start_date=datetime(2030, 1, 1))
            now >> later
        """,
    )
    run = harness.runs.trigger("dated").run
    harness.settle((Hint.queued_run("dated"),))
    assert harness.states("dated", run.run_id) == {"now": "success", "later": "skipped"}
    assert harness.run("dated", run.run_id).state is RunState.SUCCESS
    reason = harness.tis("dated", run.run_id)["later"].state_reason
    assert reason is not None and "start_date/end_date" in reason
