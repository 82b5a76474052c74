from __future__ import annotations

import json
from pathlib import Path

import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.loading import load_dags_from_file
from slipstream.core.records import ExitReason, Workload
from slipstream.core.states import TaskState
from slipstream.runner.task_runner import run_try
from tests.runner.support import make_workload, write_dag_file


@pytest.fixture
def dag_file(tmp_path: Path) -> Path:
    return write_dag_file(tmp_path)


@pytest.fixture
def dag(dag_file: Path) -> DAG:
    (found,) = load_dags_from_file(dag_file)
    return found


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")


def _run(dag: DAG, workload: Workload) -> tuple[TaskState, ExitReason, str | None]:
    finished = run_try(workload, dag, hostname="testhost")
    assert finished.key == workload.key
    return finished.state, finished.exit_reason, finished.error


def test_success_pushes_the_return_value_as_json(
    dag: DAG, dag_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    finished = run_try(make_workload(dag_file, "hello"), dag, hostname="testhost")
    assert (finished.state, finished.exit_reason, finished.error) == (
        TaskState.SUCCESS,
        ExitReason.SUCCESS,
        None,
    )
    assert finished.xcoms == (("return_value", json.dumps({"greeting": "hi world", "n": 41})),)
    assert "Running <d.hello manual__1 try 1> on host testhost" in caplog.text
    assert "Marking try as SUCCESS" in caplog.text


def test_conf_overrides_params(dag: DAG, dag_file: Path) -> None:
    finished = run_try(make_workload(dag_file, "hello", conf={"who": "mars"}), dag)
    assert json.loads(finished.xcoms[0][1])["greeting"] == "hi mars"


def test_prefetched_upstream_xcom_feeds_an_argument(dag: DAG, dag_file: Path) -> None:
    workload = make_workload(
        dag_file, "add", upstream_xcoms={"hello": {"return_value": '{"n": 41}'}}
    )
    assert run_try(workload, dag).xcoms == (("return_value", "42"),)


def test_missing_upstream_value_without_a_reader_is_none(dag: DAG, dag_file: Path) -> None:
    finished = run_try(make_workload(dag_file, "add"), dag)
    assert finished.error == "TypeError: 'NoneType' object is not subscriptable"


def test_multiple_outputs_push_every_key(dag: DAG, dag_file: Path) -> None:
    finished = run_try(make_workload(dag_file, "split"), dag)
    assert dict(finished.xcoms) == {
        "a": "1",
        "b": "[2, 3]",
        "return_value": '{"a": 1, "b": [2, 3]}',
    }


def test_branch_reports_tasks_to_skip(dag: DAG, dag_file: Path) -> None:
    finished = run_try(make_workload(dag_file, "choose"), dag)
    assert finished.state is TaskState.SUCCESS
    assert finished.skip_downstream == ("right",)


def test_exception_fails_with_its_message_and_logs_the_traceback(
    dag: DAG, dag_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state, reason, error = _run(dag, make_workload(dag_file, "boom"))
    assert (state, reason, error) == (
        TaskState.FAILED,
        ExitReason.TASK_ERROR,
        "ValueError: bad input 42",
    )
    assert "Traceback (most recent call last)" in caplog.text
    assert 'raise ValueError("bad input 42")' in caplog.text
    assert "Marking try as FAILED (task_error)" in caplog.text


def test_skip_and_fail_now(dag: DAG, dag_file: Path) -> None:
    assert _run(dag, make_workload(dag_file, "skip_me"))[:2] == (
        TaskState.SKIPPED,
        ExitReason.SKIPPED,
    )
    assert _run(dag, make_workload(dag_file, "give_up")) == (
        TaskState.FAILED,
        ExitReason.FAIL_NOW,
        "FailTask: hopeless",
    )


def test_unserializable_result_fails_naming_the_key(dag: DAG, dag_file: Path) -> None:
    state, reason, error = _run(dag, make_workload(dag_file, "unserializable"))
    assert (state, reason) == (TaskState.FAILED, ExitReason.TASK_ERROR)
    assert error is not None
    assert error.startswith("XComNotSerializable: XCom 'return_value' pushed by task")


def test_unknown_task(dag: DAG, dag_file: Path) -> None:
    assert _run(dag, make_workload(dag_file, "nope")) == (
        TaskState.FAILED,
        ExitReason.TASK_ERROR,
        f"task 'nope' not found in DAG file {dag_file}",
    )


def test_a_dag_file_that_failed_to_import(dag_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    dag_file.write_text("import no_such_module_anywhere\n")
    with pytest.raises(ImportError) as raised:
        load_dags_from_file(dag_file)
    finished = run_try(make_workload(dag_file, "hello"), raised.value)
    assert (finished.state, finished.exit_reason, finished.error) == (
        TaskState.FAILED,
        ExitReason.TASK_ERROR,
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'",
    )
    assert "import no_such_module_anywhere" in caplog.text  # the traceback, from the DAG file


def test_rendering_leaves_the_dag_untouched(dag: DAG, dag_file: Path) -> None:
    before = dag.get_task("hello").op_args  # type: ignore[attr-defined]
    run_try(make_workload(dag_file, "hello"), dag)
    assert dag.get_task("hello").op_args is before  # type: ignore[attr-defined]
