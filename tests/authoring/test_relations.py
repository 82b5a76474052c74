"""chain_linear (chain and cross_downstream are covered in test_dag.py)."""

from __future__ import annotations

import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.edges import Label
from slipstream.authoring.operators import EmptyOperator
from slipstream.authoring.relations import chain_linear
from slipstream.authoring.task_group import TaskGroup
from slipstream.errors import DagDefinitionError


def edges(dag: DAG) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


def test_chain_linear_wires_every_task_of_each_element_to_every_task_of_the_next() -> None:
    with DAG("d") as dag:
        op1, op2, op3, op4, op5, op6, op7 = (EmptyOperator(task_id=f"op{i}") for i in range(1, 8))
        chain_linear(op1, [op2, op3], [op4, op5, op6], op7)
    assert edges(dag) == {
        ("op1", "op2"),
        ("op1", "op3"),
        *{(up, down) for up in ("op2", "op3") for down in ("op4", "op5", "op6")},
        ("op4", "op7"),
        ("op5", "op7"),
        ("op6", "op7"),
    }


def test_chain_linear_with_groups_and_xcom_args() -> None:
    with DAG("d") as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("g") as g:
            EmptyOperator(task_id="x")
        end = EmptyOperator(task_id="end")
        chain_linear(start, g, [end])
    assert edges(dag) == {("start", "g.x"), ("g.x", "end")}
    assert g.upstream_task_ids == {"start"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda ops: (), "got no tasks"),
        (lambda ops: (ops,), "set no dependencies"),
        (lambda ops: (ops[0],), "set no dependencies"),
        (lambda ops: (ops[0], Label("x"), ops[1]), "does not take labels"),
        (lambda ops: (ops[0], "b"), "not with str"),
    ],
)
def test_chain_linear_refuses_what_wires_nothing_or_labels(make: object, message: str) -> None:
    with DAG("d"):
        ops = [EmptyOperator(task_id="a"), EmptyOperator(task_id="b")]
        with pytest.raises(DagDefinitionError, match=message):
            chain_linear(*make(ops))  # type: ignore[operator]
