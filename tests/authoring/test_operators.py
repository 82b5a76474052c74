from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import (
    BashOperator,
    BranchPythonOperator,
    EmptyOperator,
    PythonOperator,
    ShortCircuitOperator,
    call_with_context,
)
from slipstream.errors import SkipTask, TaskNotFound
from tests.authoring.fakes import context_for, run_task


def test_empty_operator_does_nothing() -> None:
    with DAG("d"):
        op = EmptyOperator(task_id="e")
    assert run_task(op, context_for(op)) is None


def test_python_operator_renders_its_arguments_and_injects_context() -> None:
    def work(a: int, b: str, *, c: str, ds: str, templates_dict: dict[str, Any]) -> Any:
        return (a, b, c, ds, templates_dict)

    with DAG("d"):
        op = PythonOperator(
            task_id="p",
            python_callable=work,
            op_args=[1, "{{ ds_nodash }}"],
            op_kwargs={"c": "{{ run_id }}"},
            templates_dict={"when": "{{ ts }}"},
        )
    assert run_task(op, context_for(op)) == (
        1,
        "20240305",
        "manual__2024-03-05",
        "2024-03-05",
        {"when": "2024-03-05T06:07:08+00:00"},
    )


def test_python_operator_requires_a_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        PythonOperator(task_id="p", python_callable="print")  # type: ignore[arg-type]


def test_call_with_context_explicit_kwargs_win_and_positional_names_are_not_doubled() -> None:
    def f(ti: Any, ds: str = "", **rest: Any) -> Any:
        return ti, ds, sorted(rest)

    context = {"ti": "context-ti", "ds": "context-ds", "other": 1}
    assert call_with_context(f, ["given-ti"], {"ds": "mine"}, context) == (
        "given-ti",
        "mine",
        ["other"],
    )

    def g(x: int, /, y: int) -> int:
        return x + y

    assert call_with_context(g, [1], {}, {"x": 100, "y": 2}) == 3


def test_branch_python_operator() -> None:
    with DAG("d"):
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: ["a"])
        a, b, c = (EmptyOperator(task_id=n) for n in "abc")
        branch >> [a, b]
        b >> c
    result = run_task(branch, context_for(branch))
    assert result == ["a"]
    assert branch.skip_after(result) == {"b"}


def test_branch_to_an_unknown_task_fails() -> None:
    with DAG("d"):
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "ghost")
    with pytest.raises(TaskNotFound, match="ghost"):
        run_task(branch, context_for(branch))


def test_branch_result_must_be_task_ids() -> None:
    with DAG("d"):
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: 3)
    with pytest.raises(TypeError, match="task id"):
        run_task(branch, context_for(branch))


def test_short_circuit_operator_modes() -> None:
    with DAG("d"):
        hard = ShortCircuitOperator(task_id="hard", python_callable=lambda: 0)
        soft = ShortCircuitOperator(
            task_id="soft", python_callable=lambda: [], ignore_downstream_trigger_rules=False
        )
        a, b, c, e = (EmptyOperator(task_id=n) for n in "abce")
        hard >> a >> b
        soft >> c >> e
    assert run_task(hard, context_for(hard)) == 0
    assert hard.skip_after(0) == {"a", "b"}
    assert soft.skip_after([]) == {"c"}
    assert soft.skip_after("yes") == set()


# -- BashOperator: these really run bash --------------------------------------------------------


def bash(command: str, **kwargs: Any) -> BashOperator:
    with DAG("bash_dag", template_searchpath=kwargs.pop("template_searchpath", None)):
        return BashOperator(task_id="b", bash_command=command, **kwargs)


def test_bash_runs_a_templated_command_streams_output_and_returns_the_last_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    op = bash("echo first; echo 'day {{ ds }}'")
    assert run_task(op, context_for(op)) == "day 2024-03-05"
    assert capsys.readouterr().out == "first\nday 2024-03-05\n"


def test_bash_with_no_output_returns_none() -> None:
    op = bash("true")
    assert run_task(op, context_for(op)) is None


def test_bash_env_replaces_the_environment_unless_appended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FROM_PARENT", "parent")
    alone = bash('echo "${FROM_PARENT:-unset}-$MINE"', env={"MINE": "{{ ds_nodash }}"})
    assert run_task(alone, context_for(alone)) == "unset-20240305"
    appended = bash('echo "$FROM_PARENT-$MINE"', env={"MINE": "x"}, append_env=True)
    assert run_task(appended, context_for(appended)) == "parent-x"
    inherited = bash('echo "$FROM_PARENT"')
    assert run_task(inherited, context_for(inherited)) == "parent"


def test_bash_exports_airflow_context_variables() -> None:
    op = bash('echo "$AIRFLOW_CTX_DAG_ID $AIRFLOW_CTX_TASK_ID $AIRFLOW_CTX_DAG_RUN_ID"')
    assert run_task(op, context_for(op)) == "bash_dag b manual__2024-03-05"


def test_bash_cwd(tmp_path: Path) -> None:
    op = bash("pwd", cwd=str(tmp_path))
    assert run_task(op, context_for(op)) == str(tmp_path)
    missing = bash("pwd", cwd=str(tmp_path / "missing"))
    with pytest.raises(NotADirectoryError):
        run_task(missing, context_for(missing))


def test_bash_exit_99_skips() -> None:
    op = bash("echo going; exit 99")
    with pytest.raises(SkipTask, match="99"):
        run_task(op, context_for(op))


def test_bash_non_zero_exit_raises_with_the_exit_code() -> None:
    op = bash("exit 3")
    with pytest.raises(subprocess.CalledProcessError) as info:
        run_task(op, context_for(op))
    assert info.value.returncode == 3
    assert "exit status 3" in str(info.value)


def test_bash_skip_exit_codes_are_configurable() -> None:
    op = bash("exit 5", skip_on_exit_code=[5, 6])
    with pytest.raises(SkipTask):
        run_task(op, context_for(op))
    never = bash("exit 99", skip_on_exit_code=None)
    with pytest.raises(subprocess.CalledProcessError):
        run_task(never, context_for(never))


def test_bash_command_ending_in_sh_is_a_template_file(tmp_path: Path) -> None:
    (tmp_path / "script.sh").write_text("echo from file {{ ds }}\n")
    op = bash("script.sh", template_searchpath=str(tmp_path))
    assert run_task(op, context_for(op)) == "from file 2024-03-05"


def test_bash_on_kill_without_a_process_is_harmless() -> None:
    bash("true").on_kill()
