"""Callback arguments are checked where the DAG file is read; SLAs are accepted with a warning."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from slipstream.authoring.callbacks import callbacks_of
from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import BashOperator
from slipstream.errors import DagDefinitionError


def alert(context: Any) -> None: ...


def test_default_args_callbacks_reach_every_task_and_explicit_ones_win() -> None:
    other = [alert, print]
    with DAG(
        "d",
        schedule=None,
        start_date=datetime(2024, 1, 1),
        default_args={"on_failure_callback": alert, "on_retry_callback": other},
    ) as dag:
        a = BashOperator(task_id="a", bash_command="true")
        b = BashOperator(task_id="b", bash_command="true", on_failure_callback=print)
    assert a.on_failure_callback is alert and a.on_retry_callback is other
    assert b.on_failure_callback is print
    assert callbacks_of(dag.task_dict["a"].on_retry_callback) == [alert, print]
    assert callbacks_of(None) == [] and callbacks_of(alert) == [alert]


@pytest.mark.parametrize("value", ["alert", 42, [alert, "not callable"]])
def test_a_callback_that_is_not_callable_is_refused_by_name(value: object) -> None:
    with pytest.raises(DagDefinitionError, match="on_success_callback of task 't'"):
        BashOperator(task_id="t", bash_command="true", on_success_callback=value)
    with pytest.raises(DagDefinitionError, match="on_failure_callback of DAG 'd'"):
        DAG("d", on_failure_callback=value)


def test_email_must_be_addresses() -> None:
    with pytest.raises(DagDefinitionError, match="email of task 't'"):
        BashOperator(task_id="t", bash_command="true", email=42)


def test_sla_and_sla_miss_callback_are_accepted_with_a_deprecation_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with DAG("d", sla_miss_callback=alert) as dag:
        BashOperator(task_id="t", bash_command="true", sla=timedelta(hours=1))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("sla_miss_callback of DAG 'd' is accepted and ignored" in w for w in warnings)
    assert any("sla of task 't' is accepted and ignored" in w for w in warnings)
    assert all("Airflow 3 removed them" in w for w in warnings)
    assert dag.task_dict["t"].sla == timedelta(hours=1)
