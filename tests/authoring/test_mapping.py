"""authoring.mapping: partial()/expand()/expand_kwargs() build mapped tasks, refuse what Airflow
refuses, serialize what the scheduler needs, and give each map index its own arguments."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from slipstream import DAG, task
from slipstream.authoring.mapping import MappedArgument
from slipstream.authoring.operators import BashOperator, PythonOperator
from slipstream.authoring.serialize import serialize_dag
from slipstream.authoring.task import BaseOperator
from slipstream.errors import DagDefinitionError
from tests.authoring.fakes import FakeTaskInstance

START = datetime(2024, 1, 1, tzinfo=UTC)


def mapped_fields(dag: DAG) -> dict[str, Any]:
    return {t["task_id"]: t.get("mapped") for t in serialize_dag(dag)["tasks"]}


def values(op: BaseOperator, index: int, xcoms: dict[tuple[str, str], Any] | None = None) -> Any:
    assert op.expand_input is not None
    ti = FakeTaskInstance(task_id=op.task_id, map_index=index, xcoms=xcoms or {})
    return op.expand_input.values_for({"ti": ti}, index)


def test_an_operator_class_maps_over_a_literal_list() -> None:
    with DAG("m", start_date=START, schedule=None) as dag:
        echo = BashOperator.partial(task_id="echo", retries=2).expand(
            bash_command=["echo a", "echo b"]
        )
    assert echo.is_mapped and echo.retries == 2
    assert isinstance(echo.bash_command, MappedArgument)  # type: ignore[attr-defined]
    assert mapped_fields(dag) == {
        "echo": {"kind": "expand", "args": [["bash_command", {"literal": 2}]]}
    }
    assert values(echo, 1) == {"bash_command": "echo b"}


def test_several_arguments_map_as_a_cross_product_last_fastest() -> None:
    with DAG("m", start_date=START, schedule=None):

        @task
        def add(x: int, y: int) -> int:
            return x + y

        added = add.expand(x=[1, 2], y=[10, 20, 30])
    operator = added.operator
    assert [values(operator, i) for i in range(6)] == [
        {"x": 1, "y": 10},
        {"x": 1, "y": 20},
        {"x": 1, "y": 30},
        {"x": 2, "y": 10},
        {"x": 2, "y": 20},
        {"x": 2, "y": 30},
    ]
    with pytest.raises(IndexError):
        values(operator, 6)


def test_a_taskflow_task_maps_over_an_upstream_xcom_dict_as_pairs() -> None:
    with DAG("m", start_date=START, schedule=None) as dag:

        @task
        def make() -> dict[str, int]:
            return {"a": 1}

        @task
        def use(pair: tuple[str, int], factor: int) -> None: ...

        used = use.partial(factor=3).expand(pair=make())
    assert used.operator.upstream_task_ids == {"make"}
    assert mapped_fields(dag)["use"] == {"kind": "expand", "args": [["pair", {"xcom": "make"}]]}
    xcoms = {("make", "return_value"): {"a": 1, "b": 2}}
    assert values(used.operator, 1, xcoms) == {"pair": ("b", 2)}
    assert used.operator.op_kwargs["factor"] == 3  # type: ignore[attr-defined]


def test_map_and_zip_derive_what_a_task_expands_over() -> None:
    with DAG("m", start_date=START, schedule=None) as dag:

        @task
        def letters() -> list[str]:
            return ["a", "b", "c"]

        @task
        def numbers() -> list[int]:
            return [1, 2]

        @task
        def show(value: Any) -> None: ...

        upper = show.expand(value=letters().map(str.upper))
        zipped = show.expand(value=letters().zip(numbers()))
        padded = show.expand(value=letters().zip(numbers(), fillvalue=0))
    xcoms = {
        (t, "return_value"): v
        for t, v in [
            ("letters", ["a", "b", "c"]),
            ("letters__1", ["a", "b", "c"]),
            ("letters__2", ["a", "b", "c"]),
            ("numbers", [1, 2]),
            ("numbers__1", [1, 2]),
        ]
    }
    assert values(upper.operator, 2, xcoms) == {"value": "C"}
    assert values(zipped.operator, 1, xcoms) == {"value": ("b", 2)}
    assert values(padded.operator, 2, xcoms) == {"value": ("c", 0)}
    fields = mapped_fields(dag)
    assert fields[upper.operator.task_id] == {
        "kind": "expand",
        "args": [["value", {"map": {"xcom": "letters"}}]],
    }
    assert fields[padded.operator.task_id]["args"][0][1] == {
        "zip": [{"xcom": "letters__2"}, {"xcom": "numbers__1"}],
        "fill": True,
    }
    assert padded.operator.upstream_task_ids == {"letters__2", "numbers__1"}


def test_expand_kwargs_maps_over_dicts_of_arguments() -> None:
    with DAG("m", start_date=START, schedule=None) as dag:

        @task
        def commands() -> list[dict[str, str]]:
            return [{"bash_command": "echo 1"}]

        literal = BashOperator.partial(task_id="literal").expand_kwargs(
            [{"bash_command": "echo a"}, {"bash_command": "echo b", "env": {"X": "1"}}]
        )
        from_xcom = BashOperator.partial(task_id="from_xcom").expand_kwargs(commands())
    assert values(literal, 1) == {"bash_command": "echo b", "env": {"X": "1"}}
    xcoms = {("commands", "return_value"): [{"bash_command": "echo 1"}]}
    assert values(from_xcom, 0, xcoms) == {"bash_command": "echo 1"}
    assert mapped_fields(dag)["from_xcom"] == {
        "kind": "expand_kwargs",
        "source": {"xcom": "commands"},
    }


def test_a_python_operator_maps_its_op_args() -> None:
    with DAG("m", start_date=START, schedule=None):
        op = PythonOperator.partial(task_id="p", python_callable=print).expand(op_args=[[1], [2]])
    assert values(op, 1) == {"op_args": [2]}


@task
def _add(x: int, y: int) -> int:
    return x + y


REFUSED: list[tuple[Callable[[], object], str]] = [
    (lambda: BashOperator.partial(task_id="c").expand(task_id=["a"]), "unmappable or already"),
    (lambda: BashOperator.partial(task_id="c").expand(pool=["p"]), "argument: pool"),
    (
        lambda: BashOperator.partial(task_id="c", env={}).expand(env=[{}]),
        "unmappable or already specified argument: env",
    ),
    (lambda: BashOperator.partial(task_id="c").expand(nope=[1]), "unexpected keyword argument"),
    (lambda: BashOperator.partial(task_id="c").expand(bash_command="x"), "unexpected type 'str'"),
    (lambda: BashOperator.partial(bash_command="x").expand(env=[{}]), "'task_id'"),
    (lambda: BashOperator.partial(task_id="c").expand(), "no arguments to expand against"),
    (lambda: BashOperator.partial(task_id="c").expand_kwargs({"a": 1}), "list of dicts"),
    (lambda: BashOperator.partial(task_id="c").expand_kwargs([1]), "item 0 is int"),
    (lambda: _add.partial(y=1).expand(y=[2]), "mapping already partial argument: y"),
    (lambda: _add.expand(z=[1]), "unexpected keyword argument 'z'"),
    (lambda: _add.expand(x=_add(1, 2)["other"]), "custom key 'other'"),
]


@pytest.mark.parametrize(("build", "message"), REFUSED)
def test_what_airflow_refuses_is_a_dag_definition_error(
    build: Callable[[], object], message: str
) -> None:
    with DAG("m", start_date=START, schedule=None), pytest.raises(DagDefinitionError) as raised:
        build()
    assert message in str(raised.value)


class _Greet(BaseOperator):
    template_fields = ("name",)

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name

    def execute(self, context: Any) -> str:
        return f"hello {self.name}"


def test_a_custom_operator_maps_over_its_own_required_argument() -> None:
    with DAG("m", start_date=START, schedule=None):
        greet = _Greet.partial(task_id="greet").expand(name=["ann", "bo"])
    assert values(greet, 1) == {"name": "bo"}
    assert greet.expand_input is not None
    ti = FakeTaskInstance(task_id="greet", map_index=0)
    greet.expand_input.apply_to(greet, {"ti": ti}, 0)
    assert greet.execute({}) == "hello ann"
