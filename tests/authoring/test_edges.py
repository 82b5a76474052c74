from __future__ import annotations

import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.edges import EdgeModifier, Label
from slipstream.authoring.operators import EmptyOperator
from slipstream.authoring.relations import chain
from slipstream.authoring.task_group import TaskGroup
from slipstream.authoring.taskflow import task
from slipstream.errors import DagDefinitionError


def test_a_label_between_two_tasks_wires_them_and_names_the_edge() -> None:
    with DAG("d") as dag:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        result = a >> Label("yes") >> b
    assert result is b
    assert a.downstream_task_ids == {"b"}
    assert dag.get_edge_info("a", "b") == {"label": "yes"}
    assert dag.get_edge_info("b", "a") == {}
    assert issubclass(Label, EdgeModifier)


def test_a_label_after_a_list_and_before_a_list() -> None:
    with DAG("d") as dag:
        a, b, c, e = (EmptyOperator(task_id=i) for i in "abce")
        [a, b] >> Label("both") >> [c, e]
        c << Label("back") << e
    assert dag.edge_info == {
        "a": {"c": {"label": "both"}, "e": {"label": "both"}},
        "b": {"c": {"label": "both"}, "e": {"label": "both"}},
        "e": {"c": {"label": "back"}},
    }
    assert c.upstream_task_ids == {"a", "b", "e"}


def test_set_downstream_takes_an_edge_modifier() -> None:
    with DAG("d") as dag:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        a.set_downstream(b, edge_modifier=Label("direct"))
        b.set_upstream(EmptyOperator(task_id="c"), edge_modifier=Label("up"))
    assert dag.get_edge_info("a", "b") == {"label": "direct"}
    assert dag.get_edge_info("c", "b") == {"label": "up"}


def test_labels_with_taskflow_and_chain() -> None:
    @task
    def pick() -> str:
        return "x"

    with DAG("d") as dag:
        start = pick()
        left, right = EmptyOperator(task_id="left"), EmptyOperator(task_id="right")
        chain(start, [Label("one"), Label("two")], [left, right])
    assert dag.get_edge_info("pick", "left") == {"label": "one"}
    assert dag.get_edge_info("pick", "right") == {"label": "two"}
    assert start.operator.downstream_task_ids == {"left", "right"}


def test_a_label_into_a_group_names_the_join_edge_as_airflow_does() -> None:
    with DAG("d") as dag:
        a = EmptyOperator(task_id="a")
        with TaskGroup("g") as g:
            EmptyOperator(task_id="in")
        with TaskGroup("h") as h:
            EmptyOperator(task_id="other")
        a >> Label("into") >> g
        g.set_downstream(h, edge_modifier=Label("between"))
    assert dag.get_edge_info("a", "g.upstream_join_id") == {"label": "into"}
    assert dag.get_edge_info("a", "g.in") == {"label": "into"}
    assert dag.get_edge_info("g.downstream_join_id", "h.upstream_join_id") == {"label": "between"}
    assert dag.get_task("g.in").downstream_task_ids == {"h.other"}


def test_a_label_must_be_text() -> None:
    with pytest.raises(DagDefinitionError, match="must be a string"):
        Label(3)  # type: ignore[arg-type]


def test_a_labelled_edge_needs_a_dag() -> None:
    a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
    with pytest.raises(DagDefinitionError, match="must belong to a DAG"):
        a >> Label("x") >> b
