from __future__ import annotations

from typing import Any

import pytest

from slipstream.authoring.context import Context, get_current_context
from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import BashOperator, EmptyOperator
from slipstream.authoring.taskflow import task
from slipstream.authoring.xcom_arg import XComArg
from slipstream.errors import SkipTask
from tests.authoring.fakes import context_for, run_task


def test_calling_a_task_function_in_a_dag_creates_an_operator_and_returns_an_xcom_arg() -> None:
    @task
    def extract() -> int:
        return 1

    with DAG("d") as d:
        out = extract()
    assert isinstance(out, XComArg)
    assert out.key == "return_value"
    assert out.operator is d.get_task("extract")
    assert type(out.operator).__name__ == "_PythonDecoratedOperator"


def test_xcom_arguments_make_their_producers_upstream_and_resolve_at_run_time() -> None:
    @task
    def extract() -> int:
        return 20

    @task
    def other() -> int:
        return 1

    @task
    def combine(first: int, rest: list[int], named: dict[str, Any]) -> int:
        return first + sum(rest) + int(named["x"])

    with DAG("d") as d:
        a, b = extract(), other()
        total = combine(a, [b, 2], named={"x": b})
    combine_task = total.operator
    assert combine_task.upstream_task_ids == {"extract", "other"}
    xcoms = {("extract", "return_value"): 20, ("other", "return_value"): 1}
    assert run_task(combine_task, context_for(combine_task, xcoms=xcoms)) == 20 + (1 + 2) + 1
    assert d.task_ids == ["extract", "other", "combine"]


def test_execute_resolves_xcom_args_even_without_rendering() -> None:
    @task
    def double(value: int) -> int:
        return value * 2

    @task
    def source() -> int:
        return 4

    with DAG("d"):
        result = double(source())
    context = context_for(result.operator, xcoms={("source", "return_value"): 4})
    assert result.operator.execute(context) == 8


def test_xcom_arg_key_lookup_and_shift_operators() -> None:
    @task(multiple_outputs=True)
    def split() -> dict[str, int]:
        return {"a": 1, "b": 2}

    @task
    def use(value: int) -> int:
        return value

    with DAG("d"):
        parts = split()
        b_only = parts["b"]
        used = use(b_only)
        after = EmptyOperator(task_id="after")
        before = EmptyOperator(task_id="before")
        used >> after
        before >> parts
    assert b_only.key == "b" and b_only.operator is parts.operator
    assert after.upstream_task_ids == {"use"}
    assert parts.operator.upstream_task_ids == {"before"}
    xcoms = {("split", "b"): 2}
    assert run_task(used.operator, context_for(used.operator, xcoms=xcoms)) == 2


def test_xcom_arg_is_not_iterable() -> None:
    @task
    def make() -> list[int]:
        return [1]

    with DAG("d"):
        out = make()
    with pytest.raises(TypeError, match="not iterable"):
        list(out)


def test_multiple_outputs_pushes_each_key_and_the_whole_value() -> None:
    @task(multiple_outputs=True)
    def pair() -> dict[str, int]:
        return {"x": 1, "y": 2}

    with DAG("d"):
        op = pair().operator
    context = context_for(op)
    assert run_task(op, context) == {"x": 1, "y": 2}
    assert context["ti"].pushed == {"x": 1, "y": 2, "return_value": {"x": 1, "y": 2}}


def test_multiple_outputs_is_inferred_from_a_dict_return_annotation() -> None:
    @task
    def typed() -> dict[str, int]:
        return {}

    @task
    def untyped():  # type: ignore[no-untyped-def]
        return {}

    @task(multiple_outputs=False)
    def refused() -> dict[str, int]:
        return {}

    with DAG("d"):
        assert getattr(typed().operator, "multiple_outputs") is True  # noqa: B009
        assert getattr(untyped().operator, "multiple_outputs") is False  # noqa: B009
        assert getattr(refused().operator, "multiple_outputs") is False  # noqa: B009


def test_context_values_are_injected_by_parameter_name() -> None:
    @task
    def inspect_context(value: int, ti: Any = None, ds: Any = None, params: Any = None) -> Any:
        return (value, ti.task_id, ds, params)

    with DAG("d", params={"p": 1}):
        op = inspect_context(5).operator
    assert run_task(op, context_for(op)) == (5, "inspect_context", "2024-03-05", {"p": 1})


def test_the_whole_context_is_given_to_a_function_taking_kwargs() -> None:
    seen: dict[str, Any] = {}

    @task
    def everything(value: int, **kwargs: Any) -> None:
        seen.update(kwargs, value=value)

    with DAG("d"):
        op = everything(value=3).operator
    run_task(op, context_for(op))
    assert seen["value"] == 3
    assert seen["run_id"] == "manual__2024-03-05"
    assert {"ti", "dag_run", "logical_date", "ds", "params", "task"} <= set(seen)


def test_get_current_context_inside_a_task() -> None:
    @task
    def look() -> str:
        return str(get_current_context()["ti"].task_id)

    with DAG("d"):
        op = look().operator
    assert run_task(op, context_for(op)) == "look"
    with pytest.raises(RuntimeError, match="outside a running task"):
        get_current_context()


def test_calling_the_same_function_again_gives_suffixed_ids() -> None:
    @task
    def step() -> None:
        pass

    @task(task_id="named")
    def other() -> None:
        pass

    with DAG("d") as d:
        step()
        step()
        step()
        other()
        other()
    assert d.task_ids == ["step", "step__1", "step__2", "named", "named__1"]


def test_override_and_operator_arguments_in_the_decorator() -> None:
    @task(retries=3, pool_slots=2)
    def work() -> None:
        """Does the work."""

    with DAG("d", default_args={"retries": 1, "owner": "team"}) as d:
        work()
        work.override(task_id="again", retries=0)()
    first, again = d.get_task("work"), d.get_task("again")
    assert (first.retries, first.pool_slots, first.owner) == (3, 2, "team")
    assert first.doc_md == "Does the work."
    assert again.retries == 0


def test_templated_string_arguments_are_rendered() -> None:
    @task
    def echo(text: str) -> str:
        return text

    with DAG("d"):
        op = echo("day {{ ds }}").operator
    assert run_task(op, context_for(op)) == "day 2024-03-05"


def test_branch_decorator_skips_the_direct_downstream_not_chosen() -> None:
    @task.branch
    def choose() -> str:
        return "left"

    with DAG("d"):
        branch = choose()
        left, right, after = (EmptyOperator(task_id=n) for n in ["left", "right", "after"])
        branch >> [left, right]
        right >> after
    op = branch.operator
    result = run_task(op, context_for(op))
    assert result == "left"
    assert op.skip_after(result) == {"right"}
    assert op.skip_after(["left", "right"]) == set()
    assert op.skip_after(None) == {"left", "right"}


def test_short_circuit_decorator_skips_downstream_on_a_falsy_result() -> None:
    @task.short_circuit
    def gate(open_: bool) -> bool:
        return open_

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def soft_gate() -> bool:
        return False

    with DAG("d"):
        hard = gate(False)
        soft = soft_gate()
        a, b, c, d = (EmptyOperator(task_id=n) for n in "abcd")
        hard >> a >> b
        soft >> c >> d
    assert run_task(hard.operator, context_for(hard.operator)) is False
    assert hard.operator.skip_after(False) == {"a", "b"}
    assert hard.operator.skip_after(True) == set()
    assert soft.operator.skip_after(False) == {"c"}


def test_bash_decorator_runs_the_returned_command(capsys: pytest.CaptureFixture[str]) -> None:
    @task.bash
    def say(word: str) -> str:
        return f"echo {word} {{{{ ds }}}}"

    with DAG("d"):
        op = say("hello").operator
    assert isinstance(op, BashOperator)
    assert run_task(op, context_for(op)) == "hello 2024-03-05"
    assert "hello 2024-03-05" in capsys.readouterr().out


def test_bash_decorator_refuses_an_empty_command() -> None:
    @task.bash(task_id="nothing")
    def nothing() -> str:
        return "  "

    with DAG("d"):
        op = nothing().operator
    with pytest.raises(TypeError, match="must return a command"):
        run_task(op, context_for(op))


def test_bash_decorator_exit_99_skips() -> None:
    @task.bash
    def skipper() -> str:
        return "exit 99"

    with DAG("d"):
        op = skipper().operator
    with pytest.raises(SkipTask):
        run_task(op, context_for(op))


def test_python_alias_and_call_outside_a_dag() -> None:
    @task.python(task_id="alone")
    def alone(context_value: int = 0) -> int:
        return context_value + 1

    out = alone()
    assert out.operator.dag is None
    assert out.operator.task_id == "alone"
    assert out.operator.execute(Context(ti=None)) == 1


def test_unique_ids_stay_unique_over_many_calls_and_around_hand_made_gaps() -> None:
    @task
    def step() -> None:
        pass

    with DAG("d") as d:
        for _ in range(40):
            step()
        EmptyOperator(task_id="gap__1")
        EmptyOperator(task_id="gap__3")
        EmptyOperator(task_id="gap")
        step.override(task_id="gap")()
    assert d.task_ids[:3] == ["step", "step__1", "step__2"]
    assert d.task_ids[39] == "step__39"
    assert d.task_ids[-1] == "gap__2"
    assert len(set(d.task_ids)) == len(d.task_ids)


def test_airflow_task_decorators_slipstream_lacks_are_clear_definition_errors() -> None:
    import pytest

    from slipstream.authoring.taskflow import task as task_decorators
    from slipstream.errors import DagDefinitionError

    with pytest.raises(DagDefinitionError, match=r"@task.virtualenv .* in a virtualenv"):
        task_decorators.virtualenv(lambda: None)
    with pytest.raises(DagDefinitionError, match=r"@task.docker .* Docker"):
        task_decorators.docker  # noqa: B018
    with pytest.raises(AttributeError, match=r"@task\.nonsense is not available in Slipstream"):
        task_decorators.nonsense  # noqa: B018
    with pytest.raises(DagDefinitionError, match=r"@task.run_if .* AirflowSkipException"):
        task_decorators.run_if(lambda context: True)
    assert not hasattr(task_decorators, "nonsense")  # unknown names stay AttributeErrors
