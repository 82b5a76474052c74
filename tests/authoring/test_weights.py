"""authoring.weights: effective priorities by weight_rule, as serialized for the scheduler."""

from __future__ import annotations

from slipstream import DAG
from slipstream.authoring.operators import EmptyOperator
from slipstream.authoring.serialize import serialize_dag
from slipstream.authoring.weights import priority_totals


def totals(dag: DAG) -> dict[str, int]:
    return {t["task_id"]: t["priority_weight_total"] for t in serialize_dag(dag)["tasks"]}


def test_downstream_is_own_plus_every_task_below() -> None:
    with DAG("d") as dag:
        a = EmptyOperator(task_id="a", priority_weight=2)
        b = EmptyOperator(task_id="b", priority_weight=3)
        c = EmptyOperator(task_id="c", priority_weight=5)
        d = EmptyOperator(task_id="d", priority_weight=7)
        a >> [b, c] >> d  # d counted once below a, though reached twice
    assert totals(dag) == {"a": 17, "b": 10, "c": 12, "d": 7}


def test_upstream_and_absolute_rules() -> None:
    with DAG("d", default_args={"weight_rule": "upstream"}) as dag:
        a = EmptyOperator(task_id="a", priority_weight=2)
        b = EmptyOperator(task_id="b", priority_weight=3)
        c = EmptyOperator(task_id="c", priority_weight=5, weight_rule="absolute")
        a >> b >> c
    assert totals(dag) == {"a": 2, "b": 5, "c": 5}


def test_equal_weights_on_a_wide_fan_out() -> None:
    with DAG("d") as dag:
        first = EmptyOperator(task_id="first")
        join = EmptyOperator(task_id="join")
        for i in range(1000):
            first >> EmptyOperator(task_id=f"fan{i}") >> join
    found = priority_totals(dag.topological_order())
    assert (found["first"], found["fan7"], found["join"]) == (1002, 2, 1)


def test_sums_are_clamped_to_what_airflow_stores() -> None:
    with DAG("d") as dag:
        EmptyOperator(task_id="a", priority_weight=2**31 - 1) >> EmptyOperator(
            task_id="b", priority_weight=5
        )
    assert totals(dag)["a"] == 2**31 - 1
