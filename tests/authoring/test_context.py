from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slipstream.authoring import macros
from slipstream.authoring.context import (
    Context,
    get_current_context,
    make_context,
    set_current_context,
)
from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import EmptyOperator
from tests.authoring.fakes import FakeDagRun, FakeTaskInstance

AIRFLOW_KEYS = {
    "dag",
    "task",
    "ti",
    "task_instance",
    "dag_run",
    "run_id",
    "params",
    "logical_date",
    "execution_date",
    "ds",
    "ds_nodash",
    "ts",
    "ts_nodash",
    "ts_nodash_with_tz",
    "task_instance_key_str",
    "data_interval_start",
    "data_interval_end",
    "try_number",
    "macros",
    "test_mode",
    "prev_ds",
    "next_ds",
    "prev_ds_nodash",
    "next_ds_nodash",
    "yesterday_ds",
    "tomorrow_ds",
    "yesterday_ds_nodash",
    "tomorrow_ds_nodash",
    "prev_execution_date",
    "next_execution_date",
    "prev_data_interval_start_success",
    "prev_data_interval_end_success",
    "prev_start_date_success",
    "prev_end_date_success",
    "prev_execution_date_success",
    "inlets",
    "outlets",
    "outlet_events",
    "triggering_dataset_events",
    "triggering_asset_events",
}


def build(logical_date: datetime | None, start: datetime | None = None) -> Context:
    with DAG("d") as dag:
        task = EmptyOperator(task_id="t")
    ti = FakeTaskInstance(task_id="t", dag_id="d")
    return make_context(
        dag=dag,
        task=task,
        ti=ti,
        dag_run=FakeDagRun(dag_id="d", run_id="r1"),
        params={"p": 1},
        logical_date=logical_date,
        data_interval_start=start,
        data_interval_end=None,
        try_number=2,
    )


def test_make_context_fills_airflow_keys() -> None:
    context = build(datetime(2024, 7, 8, 9, 10, 11))
    assert set(context) == AIRFLOW_KEYS
    assert isinstance(context, dict)
    assert context["ti"] is context["task_instance"]
    assert context["logical_date"] == datetime(2024, 7, 8, 9, 10, 11, tzinfo=UTC)
    assert context["execution_date"] == context["logical_date"]
    assert (context["ds"], context["ds_nodash"]) == ("2024-07-08", "20240708")
    assert context["ts"] == "2024-07-08T09:10:11+00:00"
    assert context["ts_nodash"] == "20240708T091011"
    assert context["ts_nodash_with_tz"] == "20240708T091011+0000"
    assert context["task_instance_key_str"] == "d__t__20240708"
    assert (context["run_id"], context["try_number"], context["params"]) == ("r1", 2, {"p": 1})
    assert context["macros"] is macros
    assert context["test_mode"] is False


def test_date_keys_fall_back_to_the_interval_start_then_go_missing() -> None:
    assert build(None, datetime(2024, 1, 2, tzinfo=UTC))["ds"] == "2024-01-02"
    bare = build(None)
    assert "ds" not in bare and bare["logical_date"] is None


def test_current_context_is_set_for_the_block_only() -> None:
    outer, inner = Context(name="outer"), Context(name="inner")
    with set_current_context(outer):
        assert get_current_context() is outer
        with set_current_context(inner):
            assert get_current_context() is inner
        assert get_current_context() is outer
    with pytest.raises(RuntimeError):
        get_current_context()


def test_scheduled_runs_get_airflow_2s_neighbour_dates() -> None:
    from slipstream.authoring.context import make_context as build_context

    for schedule, previous, following in (
        ("@daily", "2024-07-07", "2024-07-09"),
        (timedelta(hours=12), "2024-07-07", "2024-07-08"),
    ):
        with DAG("d", schedule=schedule) as dag:
            task = EmptyOperator(task_id="t")
        moment = datetime(2024, 7, 8, tzinfo=UTC)
        end = moment + (timedelta(days=1) if schedule == "@daily" else timedelta(hours=12))
        context = build_context(
            dag=dag,
            task=task,
            ti=FakeTaskInstance(task_id="t", dag_id="d"),
            dag_run=FakeDagRun(dag_id="d", run_id="r", external_trigger=False),
            params={},
            logical_date=moment,
            data_interval_start=moment,
            data_interval_end=end,
            try_number=1,
        )
        assert (context["prev_ds"], context["next_ds"]) == (previous, following), schedule
        assert context["yesterday_ds"] == "2024-07-07" and context["tomorrow_ds"] == "2024-07-09"
        assert context["prev_ds_nodash"] == previous.replace("-", "")
        assert context["inlets"] == [] and context["triggering_asset_events"] == {}
    manual = build(datetime(2024, 7, 8, 9))
    assert manual["prev_execution_date"] == manual["next_execution_date"] == manual["logical_date"]


def test_prev_success_keys_read_once_and_only_when_used() -> None:
    reads: list[int] = []

    class Previous:
        logical_date = datetime(2024, 7, 7, tzinfo=UTC)
        data_interval_start = datetime(2024, 7, 7, tzinfo=UTC)
        data_interval_end = datetime(2024, 7, 8, tzinfo=UTC)
        start_date = datetime(2024, 7, 8, 0, 1, tzinfo=UTC)
        end_date = datetime(2024, 7, 8, 0, 2, tzinfo=UTC)

    def read() -> Previous:
        reads.append(1)
        return Previous()

    with DAG("d") as dag:
        task = EmptyOperator(task_id="t")
    context = make_context(
        dag=dag,
        task=task,
        ti=FakeTaskInstance(task_id="t", dag_id="d"),
        dag_run=FakeDagRun(dag_id="d", run_id="r1"),
        params={},
        logical_date=datetime(2024, 7, 8, tzinfo=UTC),
        data_interval_start=None,
        data_interval_end=None,
        try_number=1,
        previous_success=read,
        variables={"v": 1},
        connections={"c": 2},
    )
    assert reads == []
    end = context["prev_end_date_success"]
    assert end == Previous.end_date and end > Previous.start_date
    assert f"{end:%H:%M}" == "00:02" and end.hour == 0
    assert str(context["prev_data_interval_start_success"]) == str(Previous.data_interval_start)
    assert context["prev_execution_date_success"] - timedelta(days=1) == datetime(
        2024, 7, 6, tzinfo=UTC
    )
    assert reads == [1]
    assert (context["var"], context["conn"]) == ({"v": 1}, {"c": 2})
    nothing = build(datetime(2024, 7, 8))
    assert not nothing["prev_start_date_success"] and nothing["prev_start_date_success"] == None  # noqa: E711


def test_macros_reach_dateutil_and_humanized_differences() -> None:
    assert macros.dateutil.relativedelta.relativedelta(months=1).months == 1
    now = datetime.now(UTC)
    assert macros.datetime_diff_for_humans(now - timedelta(hours=3)) == "3 hours ago"
    assert macros.datetime_diff_for_humans(now, now + timedelta(days=2)) == "2 days before"
    assert macros.ds_add("2024-02-28", 2) == "2024-03-01"
    assert macros.ds_format("2024-02-28", "%Y-%m-%d", "%d/%m") == "28/02"
    assert 0 <= macros.random() < 1 and macros.uuid.uuid4() and macros.json.dumps([1])


def test_lazy_neighbours_work_in_macros_and_templates() -> None:
    with DAG("d", schedule="@daily") as dag:
        task = EmptyOperator(task_id="t")
    moment = datetime(2024, 7, 8, tzinfo=UTC)
    context = make_context(
        dag=dag,
        task=task,
        ti=FakeTaskInstance(task_id="t", dag_id="d"),
        dag_run=FakeDagRun(dag_id="d", run_id="r", external_trigger=False),
        params={},
        logical_date=moment,
        data_interval_start=moment,
        data_interval_end=moment + timedelta(days=1),
        try_number=1,
    )
    assert macros.ds_add(context["prev_ds"], 1) == "2024-07-08"
    rendered = task.render_template("{{ prev_ds }}/{{ next_ds_nodash }}", context)
    assert rendered == "2024-07-07/20240709"
