from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipstream.authoring.dag import DAG, collect_dags, dag
from slipstream.authoring.operators import BashOperator, EmptyOperator, PythonOperator
from slipstream.authoring.params import DagParam, Param
from slipstream.authoring.relations import chain, cross_downstream
from slipstream.authoring.taskflow import task
from slipstream.authoring.trigger_rules import TriggerRule
from slipstream.errors import (
    CycleError,
    DagDefinitionError,
    DuplicateTaskIdError,
    InvalidScheduleError,
    TaskNotFound,
    UnknownArgumentError,
)
from tests.authoring.fakes import context_for, run_task


def edges(d: DAG) -> set[tuple[str, str]]:
    return {(t.task_id, down) for t in d.tasks for down in t.downstream_task_ids}


def test_tasks_created_in_the_with_block_join_the_dag() -> None:
    with DAG("d") as d:
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
    outside = EmptyOperator(task_id="outside")
    assert d.task_ids == ["a", "b"]
    assert d.tasks == [a, b]
    assert d.task_dict == {"a": a, "b": b}
    assert d.get_task("b") is b
    assert a.dag is d and a.dag_id == "d"
    assert outside.dag is None


def test_get_task_of_an_unknown_id_raises_task_not_found() -> None:
    with DAG("d") as d:
        EmptyOperator(task_id="a")
    with pytest.raises(TaskNotFound) as info:
        d.get_task("nope")
    assert (info.value.dag_id, info.value.task_id) == ("d", "nope")


def test_nested_with_blocks_attach_to_the_innermost_dag() -> None:
    with DAG("outer") as outer:
        EmptyOperator(task_id="before")
        with DAG("inner") as inner:
            EmptyOperator(task_id="inside")
        EmptyOperator(task_id="after")
    assert outer.task_ids == ["before", "after"]
    assert inner.task_ids == ["inside"]


def test_explicit_dag_argument_without_a_with_block() -> None:
    d = DAG("d")
    a = EmptyOperator(task_id="a", dag=d)
    assert d.task_dict == {"a": a}


def test_shift_operators_with_tasks_and_lists() -> None:
    with DAG("d") as d:
        a, b, c, e, f = (EmptyOperator(task_id=n) for n in "abcef")
        assert (a >> b) is b
        assert (e << c) is c
        returned = a >> [c, f]
        assert returned == [c, f]
        assert ([b, c] >> e) is e
        assert ([f] << a) is a
    assert edges(d) == {("a", "b"), ("c", "e"), ("a", "c"), ("a", "f"), ("b", "e")}
    assert a.downstream_task_ids == {"b", "c", "f"}
    assert e.upstream_task_ids == {"b", "c"}


def test_set_upstream_and_downstream() -> None:
    with DAG("d") as d:
        a, b, c = (EmptyOperator(task_id=n) for n in "abc")
        b.set_upstream(a)
        b.set_downstream([c])
    assert edges(d) == {("a", "b"), ("b", "c")}


def test_chain_wires_tasks_and_equal_length_lists_pairwise() -> None:
    with DAG("d") as d:
        names = ["a", "b1", "b2", "c1", "c2", "z"]
        a, b1, b2, c1, c2, z = (EmptyOperator(task_id=n) for n in names)
        chain(a, [b1, b2], [c1, c2], z)
    assert edges(d) == {
        ("a", "b1"),
        ("a", "b2"),
        ("b1", "c1"),
        ("b2", "c2"),
        ("c1", "z"),
        ("c2", "z"),
    }


def test_chain_refuses_lists_of_different_lengths() -> None:
    with DAG("d"):
        a, b, c = (EmptyOperator(task_id=n) for n in "abc")
        with pytest.raises(DagDefinitionError, match="2 and 1"):
            chain([a, b], [c])


def test_cross_downstream() -> None:
    with DAG("d") as d:
        a, b, x, y = (EmptyOperator(task_id=n) for n in "abxy")
        cross_downstream([a, b], [x, y])
    assert edges(d) == {("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")}


def test_shift_with_something_that_is_not_a_task_is_refused() -> None:
    with DAG("d"):
        a = EmptyOperator(task_id="a")
        with pytest.raises(DagDefinitionError, match="str"):
            a >> "b"  # type: ignore[type-var]


def test_duplicate_task_id_is_refused_at_once() -> None:
    with DAG("d"):
        EmptyOperator(task_id="a")
        with pytest.raises(DuplicateTaskIdError) as info:
            EmptyOperator(task_id="a")
    assert info.value.task_id == "a"
    assert info.value.dag_id == "d"


def test_cycle_is_reported_when_the_with_block_ends_naming_the_tasks_in_order() -> None:
    with pytest.raises(CycleError) as info, DAG("d"):
        a, b, c, x = (EmptyOperator(task_id=n) for n in "abcx")
        x >> a >> b >> c >> a
    assert info.value.tasks == ["a", "b", "c"]
    assert "a >> b >> c >> a" in str(info.value)


def test_a_task_depending_on_itself_is_a_cycle() -> None:
    d = DAG("d")
    a = EmptyOperator(task_id="a", dag=d)
    a >> a
    with pytest.raises(CycleError) as info:
        d.validate()
    assert info.value.tasks == ["a"]


def test_an_exception_inside_the_with_block_is_not_replaced_by_validation() -> None:
    with pytest.raises(ZeroDivisionError), DAG("d"):
        a = EmptyOperator(task_id="a")
        a >> a
        1 / 0  # noqa: B018


def test_topological_order_puts_upstream_first_and_keeps_definition_order() -> None:
    with DAG("d") as d:
        c, b, a, z = (EmptyOperator(task_id=n) for n in "cbaz")
        a >> b >> c
        z >> c
    # Among ready tasks, the one defined first goes first: b (defined before z) comes next.
    assert [t.task_id for t in d.topological_order()] == ["a", "b", "z", "c"]
    assert [t.task_id for t in d.roots] == ["a", "z"]
    assert [t.task_id for t in d.leaves] == ["c"]


def test_flat_relatives() -> None:
    with DAG("d"):
        a, b, c, e = (EmptyOperator(task_id=n) for n in "abce")
        a >> b >> c
        a >> e
    assert a.get_flat_relative_ids() == {"b", "c", "e"}
    assert c.get_flat_relative_ids(upstream=True) == {"a", "b"}


def test_a_task_without_a_dag_joins_the_dag_of_its_relative() -> None:
    with DAG("d") as d:
        a = EmptyOperator(task_id="a")
    loose = EmptyOperator(task_id="loose")
    a >> loose
    assert loose.dag is d
    assert d.task_ids == ["a", "loose"]


def test_tasks_of_different_dags_cannot_depend_on_each_other() -> None:
    a = EmptyOperator(task_id="a", dag=DAG("one"))
    b = EmptyOperator(task_id="b", dag=DAG("two"))
    with pytest.raises(DagDefinitionError, match="different DAGs"):
        a >> b


@pytest.mark.parametrize("bad", ["", "has space", "x" * 251, "semi;colon"])
def test_invalid_ids_are_refused(bad: str) -> None:
    with pytest.raises(DagDefinitionError):
        DAG(bad)
    with pytest.raises(DagDefinitionError):
        EmptyOperator(task_id=bad)


def test_bad_cron_schedule_names_the_reason() -> None:
    with pytest.raises(InvalidScheduleError) as info:
        DAG("d", schedule="61 * * * *")
    assert info.value.schedule == "61 * * * *"
    assert info.value.dag_id == "d"
    assert "out of range" in str(info.value)


def test_schedule_interval_is_the_airflow_2_name_of_schedule() -> None:
    d = DAG("d", schedule_interval="@hourly")
    assert d.timetable.summary == "@hourly"
    assert DAG("e").timetable.summary is None
    with pytest.raises(DagDefinitionError, match="not both"):
        DAG("f", schedule="@daily", schedule_interval="@daily")


def test_unknown_default_args_key_is_named() -> None:
    with pytest.raises(UnknownArgumentError) as info:
        DAG("d", default_args={"retries": 1, "retires": 3})
    assert info.value.name == "retires"
    assert info.value.dag_id == "d"


def test_common_airflow_default_args_are_accepted() -> None:
    default_args: dict[str, Any] = {
        "owner": "data",
        "email": ["a@example.com"],
        "email_on_failure": False,
        "email_on_retry": False,
        "depends_on_past": True,
        "start_date": datetime(2024, 1, 1),
        "end_date": datetime(2025, 1, 1),
        "sla": timedelta(hours=1),
        "on_failure_callback": print,
        "on_success_callback": print,
        "on_retry_callback": print,
        "on_execute_callback": print,
        "wait_for_downstream": True,
        "weight_rule": "absolute",
        "executor_config": {},
        "max_active_tis_per_dag": 2,
        "task_concurrency": 2,
        "retries": 1,
        "retry_delay": 30,
        "execution_timeout": timedelta(minutes=1),
        "trigger_rule": "all_done",
        "queue": "q",
        "pool": "default_pool",
        "priority_weight": 5,
    }
    # run_as_user and pools other than default_pool are refused (tests/authoring/test_arguments.py).
    with DAG("d", default_args=default_args) as d:
        t = EmptyOperator(task_id="t")
    assert t.owner == "data"
    assert t.depends_on_past and t.wait_for_downstream
    assert t.retry_delay == timedelta(seconds=30)
    assert t.trigger_rule == TriggerRule.ALL_DONE
    assert t.start_date == datetime(2024, 1, 1, tzinfo=UTC)
    assert d.start_date == datetime(2024, 1, 1, tzinfo=UTC)
    assert d.end_date == datetime(2025, 1, 1, tzinfo=UTC)


def test_default_args_fill_unspecified_arguments_and_explicit_ones_win() -> None:
    with DAG("d", default_args={"retries": 3, "owner": "team", "retry_delay": 10}):
        plain = EmptyOperator(task_id="plain")
        explicit = EmptyOperator(task_id="explicit", retries=0, owner="me")
    assert (plain.retries, plain.owner, plain.retry_delay) == (3, "team", timedelta(seconds=10))
    assert (explicit.retries, explicit.owner) == (0, "me")


def test_default_args_reach_operator_specific_arguments() -> None:
    with DAG("d", default_args={"env": {"A": "1"}, "retries": 2}):
        bash = BashOperator(task_id="b", bash_command="true")
        other = EmptyOperator(task_id="e")
    assert bash.env == {"A": "1"}
    assert bash.retries == other.retries == 2


def test_default_args_params_join_the_dag_params() -> None:
    d = DAG("d", params={"a": 1}, default_args={"params": {"b": 2}})
    assert set(d.params) == {"a", "b"}
    assert "params" not in d.default_args


def test_operators_take_keyword_arguments_only() -> None:
    with pytest.raises(TypeError, match="keyword"):
        EmptyOperator("a")  # type: ignore[call-arg]


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_every_trigger_rule_is_accepted(rule: TriggerRule) -> None:
    assert EmptyOperator(task_id="t", trigger_rule=rule.value).trigger_rule == rule


def test_bad_trigger_rule_is_named() -> None:
    with pytest.raises(DagDefinitionError, match="'all_sucess'"):
        EmptyOperator(task_id="t", trigger_rule="all_sucess")


def test_old_trigger_rule_names_are_normalised() -> None:
    assert EmptyOperator(task_id="t", trigger_rule="dummy").trigger_rule == "always"


def test_durations_accept_seconds_and_timedeltas() -> None:
    t = EmptyOperator(task_id="t", retry_delay=1.5, execution_timeout=timedelta(minutes=2))
    assert t.retry_delay == timedelta(seconds=1.5)
    assert t.execution_timeout == timedelta(minutes=2)
    assert t.max_retry_delay is None
    with pytest.raises(DagDefinitionError, match="retry_delay"):
        EmptyOperator(task_id="u", retry_delay="soon")  # type: ignore[arg-type]
    with pytest.raises(DagDefinitionError, match="negative"):
        EmptyOperator(task_id="v", execution_timeout=-1)


def test_other_argument_checks() -> None:
    with pytest.raises(DagDefinitionError, match="retries"):
        EmptyOperator(task_id="t", retries=-1)
    assert EmptyOperator(task_id="t", retries="2").retries == 2  # type: ignore[arg-type]
    with pytest.raises(DagDefinitionError, match="pool_slots"):
        EmptyOperator(task_id="t", pool_slots=0)
    with pytest.raises(DagDefinitionError, match="weight_rule"):
        EmptyOperator(task_id="t", weight_rule="sideways")
    with pytest.raises(DagDefinitionError, match="max_active_runs"):
        DAG("d", max_active_runs=0)
    with pytest.raises(DagDefinitionError, match="tags"):
        DAG("d", tags="etl")


def test_dates_are_utc_and_naive_means_utc() -> None:
    d = DAG("d", start_date=datetime(2024, 1, 1, 12))
    assert d.start_date == datetime(2024, 1, 1, 12, tzinfo=UTC)
    with pytest.raises(DagDefinitionError, match="start_date"):
        DAG("e", start_date="2024-01-01")  # type: ignore[arg-type]


def test_fileloc_is_the_file_that_created_the_dag() -> None:
    assert DAG("d").fileloc == __file__
    assert DAG("e", fileloc="/x/y.py").fileloc == "/x/y.py"
    assert DAG("f", fileloc="/x/y.py").folder == "/x"


def test_param_defaults_are_checked_at_definition() -> None:
    with pytest.raises(DagDefinitionError, match="'n'") as info:
        DAG("d", params={"n": Param("three", type="integer")})
    assert info.value.dag_id == "d"
    with pytest.raises(DagDefinitionError, match="JSON"):
        DAG("e", params={"when": datetime(2024, 1, 1)})


def test_owner_joins_distinct_task_owners() -> None:
    with DAG("d") as d:
        EmptyOperator(task_id="a", owner="zed")
        EmptyOperator(task_id="b", owner="amy")
        EmptyOperator(task_id="c", owner="zed")
    assert d.owner == "amy, zed"
    assert DAG("empty").owner == "airflow"


def test_collect_dags_records_every_dag_built_inside() -> None:
    with collect_dags() as built:
        first = DAG("one")
        with DAG("two") as second:
            pass
    DAG("three")
    assert built == [first, second]


# -- @dag ---------------------------------------------------------------------------------------


def test_dag_decorator_builds_the_dag_when_called() -> None:
    @dag(schedule="@daily", start_date=datetime(2024, 1, 1), tags=["x"])
    def my_pipeline() -> None:
        """Loads things."""
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        a >> b

    built = my_pipeline()
    assert isinstance(built, DAG)
    assert built.dag_id == "my_pipeline"
    assert built.doc_md == "Loads things."
    assert built.task_ids == ["a", "b"]
    assert built.timetable.summary == "@daily"
    assert built.fileloc == __file__
    assert my_pipeline().dag_id == "my_pipeline"  # every call builds afresh


def test_bare_dag_decorator_and_explicit_dag_id() -> None:
    @dag
    def bare() -> None:
        EmptyOperator(task_id="a")

    @dag("named", description="d")
    def other() -> None:
        pass

    @dag(dag_id="by_keyword")
    def third() -> None:
        pass

    assert bare().dag_id == "bare"
    assert other().dag_id == "named"
    assert third().dag_id == "by_keyword"


def test_dag_function_parameters_become_params() -> None:
    seen: dict[str, Any] = {}

    @dag(params={"declared": 1})
    def with_params(n: int = 3, label: Any = Param("x", type="string")) -> None:  # noqa: B008
        seen.update(n=n, label=label)

    built = with_params()
    assert built.params_spec == {
        "declared": {"schema": {}, "description": None, "default": 1},
        "n": {"schema": {}, "description": None, "default": 3},
        "label": {"schema": {"type": "string"}, "description": None, "default": "x"},
    }
    assert isinstance(seen["n"], DagParam)
    assert seen["n"].resolve({"params": {"n": 7}}) == 7
    assert with_params(n=5).params_spec["n"]["default"] == 5


def test_dag_function_param_passed_to_a_task_resolves_to_the_run_value() -> None:
    @dag
    def pipeline(n: int = 3) -> None:
        @task
        def show(value: int) -> int:
            return value

        show(n)

    built = pipeline()
    shown = built.get_task("show")
    assert run_task(shown, context_for(shown, conf={"n": 9})) == 9


def test_dag_function_is_validated_when_it_returns() -> None:
    @dag
    def cyclic() -> None:
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        a >> b >> a

    with pytest.raises(CycleError):
        cyclic()


def test_python_operator_in_dag_keeps_xcom_arg_dependency() -> None:
    with DAG("d") as d:
        source = EmptyOperator(task_id="source")
        PythonOperator(task_id="use", python_callable=print, op_args=[source.output])
    assert d.get_task("use").upstream_task_ids == {"source"}
