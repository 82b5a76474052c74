from __future__ import annotations

import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import BashOperator, EmptyOperator
from slipstream.authoring.serialize import serialize_dag
from slipstream.authoring.setup_teardown import setup, teardown
from slipstream.authoring.task_group import TaskGroup
from slipstream.authoring.task_group_decorator import task_group
from slipstream.authoring.taskflow import task
from slipstream.authoring.trigger_rules import TriggerRule
from slipstream.errors import DagDefinitionError


def edges(dag: DAG) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


def test_decorators_mark_tasks_and_give_teardowns_their_rule() -> None:
    @setup
    def create() -> str:
        return "cluster"

    @task
    def work() -> None:
        return None

    @teardown
    def delete() -> None:
        return None

    @teardown(on_failure_fail_dagrun=True)
    @task(retries=2)
    def strict_delete() -> None:
        return None

    with DAG("d") as dag:
        made = create()
        made >> work() >> [delete(), strict_delete()]
    created, deleted, strict = (dag.get_task(t) for t in ("create", "delete", "strict_delete"))
    assert created.is_setup and not created.is_teardown
    assert created.trigger_rule == TriggerRule.ALL_SUCCESS
    assert deleted.is_teardown and not deleted.on_failure_fail_dagrun
    assert deleted.trigger_rule == TriggerRule.ALL_DONE_SETUP_SUCCESS
    assert strict.is_teardown and strict.on_failure_fail_dagrun and strict.retries == 2
    assert not dag.get_task("work").is_setup


def test_as_setup_and_as_teardown_on_operators_and_xcom_args() -> None:
    @task
    def make() -> int:
        return 1

    with DAG("d") as dag:
        create = BashOperator(task_id="create", bash_command="true")
        work = EmptyOperator(task_id="work")
        delete = BashOperator(task_id="delete", bash_command="true", trigger_rule="all_success")
        other_setup = make()
        (
            create
            >> work
            >> delete.as_teardown(setups=[create, other_setup], on_failure_fail_dagrun=True)
        )
        flow_teardown = make().as_teardown(setups=other_setup)
    assert create.is_setup and other_setup.operator.is_setup
    assert delete.is_teardown and delete.on_failure_fail_dagrun
    assert delete.trigger_rule == TriggerRule.ALL_DONE_SETUP_SUCCESS
    assert delete.upstream_task_ids == {"work", "create", "make"}
    assert flow_teardown.operator.is_teardown
    assert dag.get_task("make__1").upstream_task_ids == {"make"}


def test_a_task_cannot_be_both() -> None:
    with DAG("d"):
        both = EmptyOperator(task_id="t").as_setup()
        with pytest.raises(DagDefinitionError, match="already a setup"):
            both.as_teardown()
        other = EmptyOperator(task_id="u").as_teardown()
        with pytest.raises(DagDefinitionError, match="already a teardown"):
            other.as_setup()


def test_teardown_trigger_rule_cannot_be_configured_on_the_decorator() -> None:
    @teardown
    @task(trigger_rule="all_success")
    def delete() -> None:
        return None

    with DAG("d"), pytest.raises(DagDefinitionError, match="teardown: its trigger_rule"):
        delete()


def test_task_groups_cannot_be_setups_and_other_things_are_refused() -> None:
    @task_group
    def group() -> None:
        return None

    with pytest.raises(DagDefinitionError, match="task group 'group' cannot be a setup"):
        setup(group)
    with pytest.raises(DagDefinitionError, match="decorates a function"):
        teardown(3)  # type: ignore[call-overload]
    with DAG("d"):
        lonely = EmptyOperator(task_id="t")
        with pytest.raises(DagDefinitionError, match="setups of teardown 't' must be tasks"):
            lonely.as_teardown(setups=["not a task"])  # type: ignore[list-item]


def test_the_with_block_wires_its_work_between_setups_and_teardowns() -> None:
    with DAG("d") as dag:
        create = EmptyOperator(task_id="create").as_setup()
        delete = EmptyOperator(task_id="delete")
        with delete.as_teardown(setups=create):
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            c = EmptyOperator(task_id="c")
            a >> [b, c]
            lone = EmptyOperator(task_id="lone")
    assert edges(dag) == {
        ("create", "delete"),
        ("create", "a"),
        ("create", "lone"),
        ("a", "b"),
        ("a", "c"),
        ("b", "delete"),
        ("c", "delete"),
        ("lone", "delete"),
    }
    assert lone.upstream_task_ids == {"create"}


def test_the_with_block_on_a_setup_and_on_decorated_tasks_and_nesting() -> None:
    @setup
    def outer_setup() -> None:
        return None

    @teardown
    def outer_teardown() -> None:
        return None

    @setup
    def inner_setup() -> None:
        return None

    @teardown
    def inner_teardown() -> None:
        return None

    @task
    def work() -> None:
        return None

    with DAG("d") as dag, outer_setup() >> outer_teardown():
        work()
        with inner_setup() >> inner_teardown():
            work()
    assert edges(dag) == {
        ("outer_setup", "outer_teardown"),
        ("outer_setup", "work"),
        ("work", "outer_teardown"),
        ("inner_setup", "inner_teardown"),
        ("inner_setup", "work__1"),
        ("work__1", "inner_teardown"),
        ("outer_setup", "inner_setup"),
        ("inner_teardown", "outer_teardown"),
    }

    with DAG("e") as other:
        begin = EmptyOperator(task_id="begin").as_setup()
        end = EmptyOperator(task_id="end")
        begin >> end.as_teardown()
        with begin:
            EmptyOperator(task_id="w")
    assert edges(other) == {("begin", "end"), ("begin", "w"), ("w", "end")}


def test_only_setups_and_teardowns_open_a_block_and_a_failed_block_wires_nothing() -> None:
    with DAG("d") as dag:
        plain = EmptyOperator(task_id="plain")
        with pytest.raises(DagDefinitionError, match="neither a setup nor a teardown"), plain:
            pass
        delete = EmptyOperator(task_id="delete").as_teardown()
        with pytest.raises(RuntimeError), delete:
            EmptyOperator(task_id="w")
            raise RuntimeError("boom")
        later = EmptyOperator(task_id="later")
    assert dag.get_task("w").downstream_task_ids == set()
    assert later.upstream_task_ids == set()


def test_work_right_after_a_setup_must_use_all_success() -> None:
    with pytest.raises(DagDefinitionError, match=r"'w' follows setup task 's'.*all_done"), DAG("d"):
        s = EmptyOperator(task_id="s").as_setup()
        s >> EmptyOperator(task_id="w", trigger_rule="all_done")
    with DAG("ok") as dag:
        s = EmptyOperator(task_id="s").as_setup()
        s >> EmptyOperator(task_id="t").as_teardown()
    assert dag.get_task("t").upstream_task_ids == {"s"}


def test_group_leaves_look_past_teardowns() -> None:
    with DAG("d") as dag:
        with TaskGroup("g") as g:
            create = EmptyOperator(task_id="create").as_setup()
            work = EmptyOperator(task_id="work")
            delete = EmptyOperator(task_id="delete").as_teardown(setups=create)
            create >> work >> delete
        after = EmptyOperator(task_id="after")
        g >> after
    assert g.leaves == [work]
    assert after.upstream_task_ids == {"g.work"}
    assert dag.get_task("g.delete").downstream_task_ids == set()


def test_roles_are_serialized_only_where_set() -> None:
    with DAG("d") as dag:
        create = EmptyOperator(task_id="create").as_setup()
        work = EmptyOperator(task_id="work")
        (
            create
            >> work
            >> EmptyOperator(task_id="delete").as_teardown(
                setups=create, on_failure_fail_dagrun=True
            )
        )
    tasks = {t["task_id"]: t for t in serialize_dag(dag)["tasks"]}
    assert tasks["create"]["is_setup"] is True and "is_teardown" not in tasks["create"]
    assert tasks["delete"]["is_teardown"] is True
    assert tasks["delete"]["on_failure_fail_dagrun"] is True
    assert tasks["delete"]["trigger_rule"] == "all_done_setup_success"
    assert not {"is_setup", "is_teardown", "on_failure_fail_dagrun"} & set(tasks["work"])
