"""Arguments Slipstream cannot honour are refused at import, naming the argument."""

from __future__ import annotations

import pytest

from slipstream import DAG
from slipstream.authoring.operators import EmptyOperator
from slipstream.errors import DagDefinitionError


def test_any_pool_name_is_kept_and_a_bad_one_refused_naming_the_task() -> None:
    # Whether the pool exists is the scheduler's question (pools live in the database).
    with DAG("d", default_args={"pool": "from_defaults"}):
        assert EmptyOperator(task_id="t", pool="etl_pool").pool == "etl_pool"
        assert EmptyOperator(task_id="u").pool == "from_defaults"
    with DAG("d"):
        assert EmptyOperator(task_id="t").pool == "default_pool"
    for bad in ("", "  ", 3):
        with (
            pytest.raises(DagDefinitionError, match="pool of task 't' must be a non-empty string"),
            DAG("d"),
        ):
            EmptyOperator(task_id="t", pool=bad)


def test_run_as_user_is_refused() -> None:
    with (
        pytest.raises(DagDefinitionError, match="run_as_user='etl' of task 't' is not supported"),
        DAG("d"),
    ):
        EmptyOperator(task_id="t", run_as_user="etl")


def test_access_control_is_refused() -> None:
    with pytest.raises(DagDefinitionError, match="access_control is not supported"):
        DAG("d", access_control={"Op": {"can_read"}})
    DAG("ok", access_control={})  # nothing asked, nothing dropped


@pytest.mark.parametrize("name", ["max_active_tis_per_dag", "max_active_tis_per_dagrun"])
def test_concurrency_limits_must_be_positive(name: str) -> None:
    with (
        pytest.raises(DagDefinitionError, match=f"{name} of task 't' must be at least 1"),
        DAG("d"),
    ):
        EmptyOperator(task_id="t", **{name: 0})


def test_task_concurrency_is_the_old_name_of_max_active_tis_per_dag() -> None:
    with DAG("d"):
        assert EmptyOperator(task_id="t", task_concurrency=3).max_active_tis_per_dag == 3


def test_priority_weight_must_be_an_integer() -> None:
    with pytest.raises(DagDefinitionError, match="priority_weight of task 't'"), DAG("d"):
        EmptyOperator(task_id="t", priority_weight="high")


def test_ignore_first_depends_on_past_is_accepted_as_in_airflow() -> None:
    with DAG("d"):
        task = EmptyOperator(task_id="t", depends_on_past=True, ignore_first_depends_on_past=False)
    assert task.depends_on_past and not task.ignore_first_depends_on_past
