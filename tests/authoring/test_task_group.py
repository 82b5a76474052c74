from __future__ import annotations

from datetime import timedelta

import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import BashOperator, EmptyOperator
from slipstream.authoring.task_group import TaskGroup
from slipstream.authoring.task_group_decorator import task_group
from slipstream.authoring.taskflow import task
from slipstream.authoring.xcom_arg import XComArg
from slipstream.errors import DagDefinitionError, DuplicateTaskIdError, UnknownArgumentError
from tests.authoring.fakes import context_for, run_task


def edges(dag: DAG) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


def test_tasks_in_a_group_get_prefixed_ids_and_join_the_dag_and_the_group() -> None:
    with DAG("d") as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("extract", tooltip="pull things") as group:
            a = EmptyOperator(task_id="a")
            b = BashOperator(task_id="b", bash_command="true")
    assert dag.task_ids == ["start", "extract.a", "extract.b"]
    assert (a.task_group, b.task_group, start.task_group) == (group, group, dag.task_group)
    assert (a.label, start.label) == ("a", "start")
    assert list(group.children) == ["extract.a", "extract.b"]
    assert dag.task_group_dict == {"extract": group}
    assert dag.task_group.children["extract"] is group
    assert group.get_child_by_label("b") is b
    assert list(group) == [a, b]
    assert group.tooltip == "pull things"
    assert (group.ui_color, group.ui_fgcolor) == ("CornflowerBlue", "#000")


def test_nested_groups_prefix_every_level_unless_a_level_says_not_to() -> None:
    with DAG("d") as dag:
        with TaskGroup("outer") as outer:
            with TaskGroup("inner") as inner:
                deep = EmptyOperator(task_id="t")
            with TaskGroup("flat", prefix_group_id=False) as flat:
                shallow = EmptyOperator(task_id="s")
        with TaskGroup("plain", prefix_group_id=False), TaskGroup("child") as child:
            under_plain = EmptyOperator(task_id="u")
    assert inner.group_id == "outer.inner" and inner.label == "inner"
    assert inner.parent_group is outer and outer.parent_group is dag.task_group
    assert deep.task_id == "outer.inner.t"
    assert (flat.group_id, shallow.task_id) == ("outer.flat", "s")
    assert (child.group_id, under_plain.task_id) == ("child", "child.u")
    assert set(dag.task_group_dict) == {"outer", "outer.inner", "outer.flat", "plain", "child"}
    assert list(outer) == [deep, shallow]
    assert outer.has_task(deep) and not inner.has_task(shallow)


def test_an_explicit_task_group_argument_and_dag_argument_work_outside_with_blocks() -> None:
    dag = DAG("d")
    group = TaskGroup("g", dag=dag)
    inner = TaskGroup("i", parent_group=group)
    first = EmptyOperator(task_id="first", task_group=group)
    second = EmptyOperator(task_id="second", task_group=inner)
    assert first.dag is dag and second.dag is dag
    assert dag.task_ids == ["g.first", "g.i.second"]
    with DAG("other") as other, pytest.raises(DagDefinitionError, match="of DAG 'd'"):
        EmptyOperator(task_id="x", dag=other, task_group=group)


def test_group_and_task_ids_are_unique_within_the_dag() -> None:
    with DAG("d") as dag:
        EmptyOperator(task_id="taken")
        TaskGroup("g")
        with pytest.raises(DagDefinitionError, match="group_id 'g' is already used"):
            TaskGroup("g")
        with pytest.raises(DagDefinitionError, match="group_id 'taken' is already used"):
            TaskGroup("taken")
        with pytest.raises(DagDefinitionError, match="already used by a task group"):
            EmptyOperator(task_id="g")
        with TaskGroup("h"):
            EmptyOperator(task_id="t")
            with pytest.raises(DuplicateTaskIdError):
                EmptyOperator(task_id="t")
        suffixed = TaskGroup("g", add_suffix_on_collision=True)
        again = TaskGroup("g", add_suffix_on_collision=True)
    assert (suffixed.group_id, again.group_id) == ("g__1", "g__2")
    assert "h.t" in dag.task_dict


@pytest.mark.parametrize(
    ("group_id", "prefix", "message"),
    [
        ("a.b", True, "may only contain"),
        ("has space", True, "may only contain"),
        ("", True, "non-empty string"),
        (None, False, "non-empty string"),
        ("x" * 201, True, "longer than 200"),
    ],
)
def test_bad_group_ids_are_refused(group_id: object, prefix: bool, message: str) -> None:
    with DAG("d"), pytest.raises(DagDefinitionError, match=message):
        TaskGroup(group_id, prefix_group_id=prefix)  # type: ignore[arg-type]


def test_a_dot_is_fine_in_a_group_that_does_not_prefix() -> None:
    with DAG("d") as dag:
        TaskGroup("a.b", prefix_group_id=False)
    assert "a.b" in dag.task_group_dict


def test_a_group_needs_a_dag() -> None:
    with pytest.raises(DagDefinitionError, match="must be created inside a DAG"):
        TaskGroup("lonely")


def test_group_default_args_merge_over_the_dags_and_inner_groups_win() -> None:
    with DAG("d", default_args={"retries": 1, "owner": "dag", "queue": "q"}) as dag:
        top = EmptyOperator(task_id="top")
        with TaskGroup("g", default_args={"retries": 2, "owner": "group"}):
            in_group = EmptyOperator(task_id="t")
            explicit = EmptyOperator(task_id="e", retries=7)
            with TaskGroup("inner", default_args={"retries": 3}):
                inner = BashOperator(task_id="b", bash_command="true")

                @task
                def flow() -> None:
                    return None

                flowed = flow().operator
    assert (top.retries, top.owner) == (1, "dag")
    assert (in_group.retries, in_group.owner, in_group.queue) == (2, "group", "q")
    assert explicit.retries == 7
    assert (inner.retries, inner.owner, inner.queue) == (3, "group", "q")
    assert flowed.task_id == "g.inner.flow" and flowed.retries == 3
    assert dag.task_group_dict["g.inner"].default_args == {"retries": 3, "owner": "group"}


def test_unknown_group_default_args_are_refused() -> None:
    with DAG("d"), pytest.raises(UnknownArgumentError, match=r"'retires'.*task group 'g'"):
        TaskGroup("g", default_args={"retires": 3})


def test_taskflow_ids_are_deduplicated_inside_groups() -> None:
    @task
    def step() -> int:
        return 1

    with DAG("d") as dag:
        step()
        with TaskGroup("g"):
            first, second, third = step(), step(), step()
    ids = [x.operator.task_id for x in (first, second, third)]
    assert ids == ["g.step", "g.step__1", "g.step__2"]
    assert dag.task_ids == ["step", "g.step", "g.step__1", "g.step__2"]


def test_wiring_groups_attaches_to_roots_and_leaves_and_keeps_the_group_ids() -> None:
    with DAG("d") as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("g1") as g1:
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            c = EmptyOperator(task_id="c")
            a >> [b, c]
        with TaskGroup("g2") as g2:
            x = EmptyOperator(task_id="x")
            y = EmptyOperator(task_id="y")
        end = EmptyOperator(task_id="end")
        start >> g1 >> g2 >> end
    assert (g1.roots, g1.leaves) == ([a], [b, c])
    assert set(g2.roots) == set(g2.leaves) == {x, y}
    assert edges(dag) == {
        ("start", "g1.a"),
        ("g1.a", "g1.b"),
        ("g1.a", "g1.c"),
        *{(leaf, root) for leaf in ("g1.b", "g1.c") for root in ("g2.x", "g2.y")},
        ("g2.x", "end"),
        ("g2.y", "end"),
    }
    assert g1.upstream_task_ids == {"start"} and g2.downstream_task_ids == {"end"}
    assert g1.downstream_group_ids == {"g2"} and g2.upstream_group_ids == {"g1"}
    # As in Airflow, a group wired after another also hears of the other's leaves.
    assert g2.upstream_task_ids == {"g1.b", "g1.c"}
    assert start.downstream_task_ids == {"g1.a"} and end.upstream_task_ids == {"g2.x", "g2.y"}


def test_lists_and_left_shift_work_with_groups() -> None:
    with DAG("d") as dag:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        with TaskGroup("g") as g:
            inside = EmptyOperator(task_id="i")
        z = EmptyOperator(task_id="z")
        [a, b] >> g
        z << g
    assert edges(dag) == {("a", "g.i"), ("b", "g.i"), ("g.i", "z")}
    assert g.upstream_task_ids == {"a", "b"} and g.downstream_task_ids == {"z"}
    assert inside.upstream_task_ids == {"a", "b"}


def test_decorated_task_group_takes_arguments_and_returns_what_the_function_returns() -> None:
    @task
    def produce() -> int:
        return 3

    @task
    def double(value: int) -> int:
        return value * 2

    @task_group
    def doubled_twice(value: int) -> XComArg:
        """Doubles twice."""
        return double(double(value))

    with DAG("d") as dag:
        result = doubled_twice(produce())
        again = doubled_twice(result)
    assert isinstance(result, XComArg)
    assert result.operator.task_id == "doubled_twice.double__1"
    assert again.operator.task_id == "doubled_twice__1.double__1"
    group = dag.task_group_dict["doubled_twice"]
    assert group.tooltip == "Doubles twice."
    assert dag.get_task("doubled_twice.double").upstream_task_ids == {"produce"}
    assert dag.get_task("doubled_twice__1.double").upstream_task_ids == {"doubled_twice.double__1"}
    first = dag.get_task("doubled_twice.double")
    assert run_task(first, context_for(first, xcoms={("produce", "return_value"): 3})) == 6


def test_a_decorated_group_returning_nothing_returns_the_group_for_wiring() -> None:
    @task_group(group_id="load", tooltip="tip", default_args={"retries": 4}, ui_color="#fff")
    def loader() -> None:
        EmptyOperator(task_id="one")
        EmptyOperator(task_id="two")

    with DAG("d") as dag:
        start = EmptyOperator(task_id="start")
        group = loader()
        start >> group
    assert isinstance(group, TaskGroup)
    assert (group.group_id, group.tooltip, group.ui_color) == ("load", "tip", "#fff")
    assert dag.get_task("load.one").retries == 4
    assert start.downstream_task_ids == {"load.one", "load.two"}


def test_decorated_groups_nest_and_override() -> None:
    @task_group
    def inner() -> None:
        EmptyOperator(task_id="t")

    @task_group(prefix_group_id=True)
    def outer() -> None:
        inner()
        inner()
        inner.override(group_id="renamed")()

    with DAG("d") as dag:
        outer()
    assert dag.task_ids == ["outer.inner.t", "outer.inner__1.t", "outer.renamed.t"]


def test_task_group_decorator_refuses_unknown_arguments() -> None:
    # Mapping a @task_group (.expand) is tested in test_mapped_task_group.py.
    with pytest.raises(UnknownArgumentError, match="'colour'"):

        @task_group(colour="red")
        def bad() -> None:
            return None


def test_a_group_with_timedelta_default_args_applies_them() -> None:
    with DAG("d"), TaskGroup("g", default_args={"retry_delay": timedelta(seconds=9)}):
        t = EmptyOperator(task_id="t")
    assert t.retry_delay == timedelta(seconds=9)


def test_root_group_cannot_be_entered() -> None:
    dag = DAG("d")
    with pytest.raises(DagDefinitionError, match="root task group"), dag.task_group:
        pass
