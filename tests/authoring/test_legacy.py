"""The Airflow 1.10/2.x flavours: DAG defaults and provide_context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from slipstream.authoring import legacy
from slipstream.authoring.dag import DAG
from tests.authoring.fakes import context_for, run_task


def test_legacy_dag_defaults_to_catchup_and_a_daily_schedule() -> None:
    dag = legacy.DAG("old", start_date=datetime(2024, 1, 1, tzinfo=UTC))
    assert isinstance(dag, DAG)
    assert dag.catchup is True and dag.schedule == timedelta(days=1)
    assert legacy.DAG("off", catchup=False, schedule_interval="@hourly").catchup is False


def test_provide_context_is_accepted_and_the_context_still_arrives() -> None:
    def uses_context(**context: Any) -> str:
        return str(context["ds"])

    with legacy.DAG("ctx", schedule=None):
        op = legacy.PythonOperator(task_id="t", python_callable=uses_context, provide_context=True)
        default_args_op = legacy.BranchPythonOperator(
            task_id="b", python_callable=lambda: None, provide_context=True
        )
    assert op.provide_context and default_args_op.provide_context
    assert run_task(op, context_for(op)) == "2024-03-05"


def test_provide_context_may_come_from_default_args() -> None:
    with legacy.DAG("ctx_defaults", schedule=None, default_args={"provide_context": True}):
        op = legacy.ShortCircuitOperator(task_id="s", python_callable=lambda: True)
    assert op.provide_context is True
