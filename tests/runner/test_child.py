from __future__ import annotations

import os
from pathlib import Path

from slipstream.authoring.dag import DAG
from slipstream.authoring.loading import load_dags_from_file
from slipstream.core.records import ExitReason, TaskFinished, Workload
from slipstream.core.states import TaskState
from slipstream.runner.child import fork_try
from slipstream.runner.frames import FrameDecoder
from tests.runner.support import make_workload, pid_exists, wait_until, write_dag_file


def _collect(pid: int, fd: int) -> tuple[TaskFinished | None, int]:
    decoder = FrameDecoder()
    messages: list[object] = []
    while chunk := os.read(fd, 65536):
        messages += decoder.feed(chunk)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    result = messages[0] if messages else None
    assert result is None or isinstance(result, TaskFinished)
    return result, os.waitstatus_to_exitcode(status)


def _load(tmp_path: Path) -> tuple[Path, DAG]:
    dag_file = write_dag_file(tmp_path)
    (dag,) = load_dags_from_file(dag_file)
    return dag_file, dag


def _fork(workload: Workload, dag: DAG | BaseException) -> tuple[TaskFinished | None, int]:
    return _collect(*fork_try(workload, dag, hostname="testhost"))


def test_child_reports_and_logs_everything_it_and_its_subprocesses_write(
    tmp_path: Path,
) -> None:
    dag_file, dag = _load(tmp_path)
    workload = make_workload(dag_file, "chatty")
    result, code = _fork(workload, dag)
    assert code == 0
    assert result is not None
    assert result.state is TaskState.SUCCESS
    log = Path(workload.log_path).read_text()
    lines = log.splitlines()
    assert "INFO - Running <d.chatty manual__1 try 1> on host testhost" in lines[0]
    assert lines[0].startswith("[20")
    assert "plain stdout line" in lines
    assert "plain stderr line" in lines
    assert any(line.endswith("WARNING - a logging record") for line in lines)
    assert "output of a bash subprocess" in lines
    assert "Marking try as SUCCESS (success)" in lines[-1]


def test_log_is_readable_while_the_try_runs(tmp_path: Path) -> None:
    dag_file, dag = _load(tmp_path)
    os.mkfifo(tmp_path / "gate.fifo")
    workload = make_workload(dag_file, "halfway")
    pid, fd = fork_try(workload, dag)
    log = Path(workload.log_path)
    wait_until(lambda: log.exists() and "halfway there" in log.read_text(), what="mid-run log")
    assert "all done" not in log.read_text()
    assert pid_exists(pid)
    with open(tmp_path / "gate.fifo", "w") as gate:
        gate.write("go")
    result, _ = _collect(pid, fd)
    assert result is not None and result.state is TaskState.SUCCESS
    assert "all done" in log.read_text()


def test_failure_traceback_goes_to_the_log(tmp_path: Path) -> None:
    dag_file, dag = _load(tmp_path)
    workload = make_workload(dag_file, "boom")
    result, code = _fork(workload, dag)
    assert code == 0
    assert result is not None
    assert (result.state, result.exit_reason, result.error) == (
        TaskState.FAILED,
        ExitReason.TASK_ERROR,
        "ValueError: bad input 42",
    )
    log = Path(workload.log_path).read_text()
    assert "Traceback (most recent call last)" in log
    assert "ValueError: bad input 42" in log


def test_import_failure_is_reported_by_the_child(tmp_path: Path) -> None:
    dag_file, _ = _load(tmp_path)
    workload = make_workload(dag_file, "hello")
    try:
        raise SyntaxError("broken DAG file")
    except SyntaxError as exc:
        error = exc
    result, _ = _fork(workload, error)
    assert result is not None
    assert result.error == "SyntaxError: broken DAG file"
    assert "broken DAG file" in Path(workload.log_path).read_text()


def test_child_leading_its_own_session_exits_without_a_result(tmp_path: Path) -> None:
    dag_file, dag = _load(tmp_path)
    result, code = _fork(make_workload(dag_file, "hard_exit"), dag)
    assert (result, code) == (None, 3)


def test_appending_to_an_existing_log(tmp_path: Path) -> None:
    dag_file, dag = _load(tmp_path)
    workload = make_workload(dag_file, "noop")
    Path(workload.log_path).parent.mkdir(parents=True)
    Path(workload.log_path).write_text("earlier line\n")
    _fork(workload, dag)
    assert Path(workload.log_path).read_text().startswith("earlier line\n[")
