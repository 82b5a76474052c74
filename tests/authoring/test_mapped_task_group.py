"""authoring.mapped_task_group and @task_group's .partial/.expand/.expand_kwargs: a mapped
group's tasks are mapped with it, its arguments resolve per map index, what the expansion
reads is upstream of the group, the serialized form carries it for the scheduler, and what
Airflow refuses (or Slipstream cannot hold) in a mapped group is a DagDefinitionError."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from slipstream import DAG, task
from slipstream.authoring.mapped_task_group import (
    MappedGroupArgument,
    MappedGroupError,
    MappedTaskGroup,
    mapped_group_of,
)
from slipstream.authoring.operators import BashOperator, EmptyOperator
from slipstream.authoring.serialize import serialize_dag
from slipstream.authoring.task import BaseOperator
from slipstream.authoring.task_group import TaskGroup
from slipstream.authoring.task_group_decorator import task_group
from slipstream.authoring.templating import resolve_values
from slipstream.core.dag_plan import DagPlan
from slipstream.errors import DagDefinitionError
from tests.authoring.fakes import FakeTaskInstance

START = datetime(2024, 1, 1, tzinfo=UTC)


def kwargs_at(op: BaseOperator, index: int, xcoms: dict[tuple[str, str], Any] | None = None) -> Any:
    """The arguments a try of TaskFlow task `op` at map index `index` calls its function
    with, by parameter name."""
    ti = FakeTaskInstance(task_id=op.task_id, map_index=index, xcoms=xcoms or {})
    args = resolve_values(op.op_args, {"ti": ti})  # type: ignore[attr-defined]
    kwargs = resolve_values(op.op_kwargs, {"ti": ti})  # type: ignore[attr-defined]
    bound = inspect.signature(op.python_callable).bind(*args, **kwargs)  # type: ignore[attr-defined]
    return dict(bound.arguments)


def tasks_of(dag: DAG) -> dict[str, dict[str, Any]]:
    return {t["task_id"]: t for t in serialize_dag(dag)["tasks"]}


@task
def add(x: int, k: int = 0) -> int:
    return x + k


@task
def double(x: int) -> int:
    return x * 2


@task
def total(values: list[int]) -> int:
    return sum(values)


def test_every_task_of_a_mapped_group_is_mapped_with_it() -> None:
    @task_group
    def grow(value: int, k: int) -> Any:
        return double(add(value, k))

    with DAG("m", start_date=START, schedule=None) as dag:
        total(grow.partial(k=1).expand(value=[1, 2, 3]))
    group = dag.task_group_dict["grow"]
    assert isinstance(group, MappedTaskGroup)
    first, second = dag.get_task("grow.add"), dag.get_task("grow.double")
    assert mapped_group_of(first) is group and mapped_group_of(second) is group
    assert mapped_group_of(dag.get_task("total")) is None
    # The group's argument is a placeholder per map index; partial() values are plain.
    argument = first.op_args[0]  # type: ignore[attr-defined]
    assert isinstance(argument, MappedGroupArgument) and argument.name == "value"
    assert [kwargs_at(first, i) for i in range(3)] == [{"x": v, "k": 1} for v in (1, 2, 3)]
    shapes = tasks_of(dag)
    expected = {"kind": "expand", "args": [["value", {"literal": 3}]]}
    for task_id in ("grow.add", "grow.double"):
        assert shapes[task_id]["mapped"] == expected
        assert shapes[task_id]["map_group"] == "grow"
    assert "mapped" not in shapes["total"] and "map_group" not in shapes["total"]
    assert shapes["total"]["upstream"] == ["grow.double"]
    (node,) = [c for c in serialize_dag(dag)["task_group"]["children"] if "group_id" in c]
    assert node["mapped"] == expected


def test_what_the_expansion_reads_is_upstream_of_the_group_and_of_who_takes_it() -> None:
    @task
    def numbers() -> list[int]:
        return [1, 2]

    @task
    def note() -> str:
        return "n"

    @task_group
    def scale(value: int) -> None:
        first = add(value)
        first >> note()  # a task of the group that does not read the argument
        double(first)

    with DAG("m", start_date=START, schedule=None) as dag:
        scale.expand(value=numbers())
    assert dag.get_task("scale.add").upstream_task_ids == {"numbers"}
    assert dag.get_task("scale.note").upstream_task_ids == {"scale.add"}
    assert dag.get_task("scale.double").upstream_task_ids == {"scale.add"}
    assert dag.task_group_dict["scale"].upstream_task_ids == {"numbers"}
    xcoms = {("numbers", "return_value"): [5, 6]}
    assert kwargs_at(dag.get_task("scale.add"), 1, xcoms) == {"x": 6}
    plan = DagPlan.from_structure(serialize_dag(dag), version_id=1, version_hash="h")
    assert plan.map_groups == {"scale": ("scale.add", "scale.note", "scale.double")}
    assert plan.paired_upstream == {
        "scale.double": frozenset({"scale.add"}),
        "scale.note": frozenset({"scale.add"}),
    }
    assert plan.mapped == {"scale.add", "scale.double", "scale.note"}
    assert plan.feeds_mapping == {"numbers"}


def test_an_argument_given_deeper_in_the_group_makes_its_producer_upstream_there_too() -> None:
    @task
    def numbers() -> list[int]:
        return [1, 2]

    @task_group
    def pair(value: int) -> Any:
        return add(double(value), value)

    with DAG("m", start_date=START, schedule=None) as dag:
        pair.expand(value=numbers())
    assert dag.get_task("pair.add").upstream_task_ids == {"numbers", "pair.double"}


def test_expand_kwargs_over_literal_dicts_and_an_xcom() -> None:
    @task
    def settings() -> list[dict[str, int]]:
        return [{"value": 1, "k": 5}]

    @task_group
    def grow(value: int, k: int = 10) -> Any:
        return add(value, k)

    with DAG("m", start_date=START, schedule=None) as dag:
        literal = grow.expand_kwargs([{"value": 1}, {"value": 2, "k": 3}])
        from_xcom = grow.expand_kwargs(settings())
    first, second = literal.operator, from_xcom.operator
    assert [kwargs_at(first, i) for i in range(2)] == [{"x": 1, "k": 10}, {"x": 2, "k": 3}]
    xcoms = {("settings", "return_value"): [{"value": 1, "k": 5}, {"k": 1}, {"value": 1, "z": 2}]}
    assert kwargs_at(second, 0, xcoms) == {"x": 1, "k": 5}
    with pytest.raises(MappedGroupError, match=r"item 1 .* has no value for 'value'"):
        kwargs_at(second, 1, xcoms)
    with pytest.raises(MappedGroupError, match="names 'z', which is not a parameter"):
        kwargs_at(second, 2, xcoms)
    assert tasks_of(dag)[second.task_id]["mapped"] == {
        "kind": "expand_kwargs",
        "source": {"xcom": "settings"},
    }
    assert second.upstream_task_ids == {"settings"}


def test_map_zip_and_dicts_as_what_a_group_expands_over() -> None:
    @task
    def letters() -> dict[str, int]:
        return {"a": 1, "b": 2}

    @task
    def numbers() -> list[int]:
        return [1, 2, 3]

    @task
    def show(value: Any) -> Any:
        return value

    @task_group
    def each(value: Any) -> Any:
        return show(value)

    with DAG("m", start_date=START, schedule=None) as dag:
        pairs = each.expand(value=letters())
        tens = each.expand(value=numbers().map(lambda n: n * 10))
        zipped = each.expand(value=numbers().zip(letters()))
        crossed = each.expand(value=[1, 2])
    xcoms = {
        (t, "return_value"): v
        for t in dag.task_ids
        for v in ([{"a": 1, "b": 2}] if t.startswith("letters") else [[1, 2, 3]])
    }
    assert kwargs_at(pairs.operator, 1, xcoms) == {"value": ("b", 2)}
    assert kwargs_at(tens.operator, 2, xcoms) == {"value": 30}
    assert kwargs_at(zipped.operator, 1, xcoms) == {"value": (2, ("b", 2))}
    assert kwargs_at(crossed.operator, 0, xcoms) == {"value": 1}
    assert [g.group_id for g in dag.task_group_dict.values()] == [
        "each",
        "each__1",
        "each__2",
        "each__3",
    ]


def test_a_cross_product_of_group_arguments() -> None:
    @task_group
    def grid(x: int, k: int) -> Any:
        return add(x, k)

    with DAG("m", start_date=START, schedule=None):
        made = grid.expand(x=[1, 2], k=[10, 20])
    assert [kwargs_at(made.operator, i) for i in range(4)] == [
        {"x": 1, "k": 10},
        {"x": 1, "k": 20},
        {"x": 2, "k": 10},
        {"x": 2, "k": 20},
    ]


def test_classic_operators_in_a_mapped_group_take_its_arguments_in_templated_fields() -> None:
    @task_group
    def echo(word: str) -> None:
        BashOperator(task_id="say", bash_command="echo $WORD", env={"WORD": word})

    with DAG("m", start_date=START, schedule=None) as dag:
        echo.expand(word=["hi", "ho"])
    say = copy.copy(dag.get_task("echo.say"))  # rendering rewrites the fields, as in a try
    ti = FakeTaskInstance(task_id="echo.say", map_index=1)
    say.render_template_fields({"ti": ti})
    assert say.env == {"WORD": "ho"}  # type: ignore[attr-defined]
    unmapped = FakeTaskInstance(task_id="echo.say")
    with pytest.raises(MappedGroupError, match="only in a try of one of the group's tasks"):
        resolve_values(dag.get_task("echo.say").env, {"ti": unmapped})  # type: ignore[attr-defined]


def test_a_mapped_group_returns_the_group_when_its_function_returns_nothing() -> None:
    @task_group
    def quiet(value: int) -> None:
        add(value)

    with DAG("m", start_date=START, schedule=None) as dag:
        start = EmptyOperator(task_id="start")
        made = quiet.expand(value=[1])
        start >> made
    assert isinstance(made, MappedTaskGroup)
    assert dag.get_task("quiet.add").upstream_task_ids == {"start"}


def test_dags_without_mapped_groups_keep_their_serialized_shape() -> None:
    with DAG("m", start_date=START, schedule=None) as dag, TaskGroup("plain"):
        add.expand(x=[1, 2])
    structure = serialize_dag(dag)
    (shape,) = structure["tasks"]
    assert "map_group" not in shape
    assert "mapped" not in structure["task_group"]["children"][0]


@task_group
def _group(value: int) -> Any:
    return add(value)


@task_group
def _nested_mapping(value: int) -> Any:
    return add.expand(x=[1, 2])


@task_group
def _nested_group(value: int) -> Any:
    return _group.expand(value=[1])


@task_group
def _always(value: int) -> Any:
    return add.override(trigger_rule="always")(value)


@task_group
def _with_setup(value: int) -> Any:
    return add(value).as_setup()


@task_group
def _two(value: int, other: int) -> Any:
    return add(value, other)


def _argument_outside() -> None:
    kept: list[Any] = []

    @task_group
    def leak(value: int) -> None:
        kept.append(value)
        add(value)

    leak.expand(value=[1])
    double(kept[0])


@task_group
def _condition(value: int) -> Any:
    return add(1) if value else add(2)


@task_group
def _formatted(value: int) -> None:
    BashOperator(task_id="say", bash_command=f"echo {value}")


REFUSED: list[tuple[Callable[[], object], str]] = [
    (_group.expand, "no arguments to expand against"),
    (lambda: _group.expand(nope=[1]), "_group.expand() got an unexpected keyword argument 'nope'"),
    (lambda: _group.partial(nope=1), "_group.partial() got an unexpected keyword argument"),
    (lambda: _group.expand(value="abc"), "unexpected type 'str' for keyword argument 'value'"),
    (lambda: _two.partial(other=1).expand(other=[2]), "mapping already partial argument: other"),
    (lambda: _two.expand(value=[1]), "_two.expand() is missing the argument 'other'"),
    (lambda: _two.expand_kwargs([{"value": 1}]), "is missing the argument 'other'"),
    (lambda: _two.expand_kwargs([{"value": 1, "z": 2}]), "unexpected keyword argument 'z'"),
    (lambda: _group.expand_kwargs("x"), "expand_kwargs() expects a list of dicts"),
    (lambda: _nested_group.expand(value=[1]), "mapped task groups do not nest"),
    (
        lambda: _condition.expand(value=[0, 1]),
        "argument 'value' of mapped task group '_condition' is tested as a condition while the "
        "DAG is defined, but it has a value only when a task of the group runs",
    ),
    (lambda: _formatted.expand(value=[1]), "'_formatted' is formatted into a string while"),
]


@pytest.mark.parametrize(("build", "message"), REFUSED)
def test_what_cannot_be_mapped_is_refused_when_the_group_is_built(
    build: Callable[[], object], message: str
) -> None:
    with DAG("m", start_date=START, schedule=None), pytest.raises(DagDefinitionError) as raised:
        build()
    assert message in str(raised.value)


CHECKED: list[tuple[Callable[[], object], str]] = [
    (
        lambda: _nested_mapping.expand(value=[1]),
        "task '_nested_mapping.add' in mapped task group '_nested_mapping' is mapped itself "
        "(.expand/.expand_kwargs): task mapping inside a mapped task group is not supported",
    ),
    (lambda: _always.expand(value=[1]), "has trigger_rule 'always', which Airflow does not"),
    (lambda: _with_setup.expand(value=[1]), "is a setup task: setups and teardowns inside"),
    (_argument_outside, "task 'double' takes argument 'value' of mapped task group 'leak'"),
]


@pytest.mark.parametrize(("build", "message"), CHECKED)
def test_what_a_mapped_group_cannot_hold_fails_the_dag(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(DagDefinitionError) as raised, DAG("m", start_date=START, schedule=None):
        build()
    assert message in str(raised.value)
