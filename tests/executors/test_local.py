from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from slipstream.core.records import (
    CallbackDone,
    CallbackKind,
    CallbackRequest,
    ExitReason,
    TaskEvent,
    TaskFinished,
    TaskStarted,
)
from slipstream.core.states import TaskState
from slipstream.executors.local import LocalExecutor
from slipstream.runner.runtime import XComReader
from tests.executors.slow_callbacks import notes_of as _notes
from tests.executors.slow_callbacks import slow_callbacks
from tests.executors.waiting import wait_for_finished, wait_for_started
from tests.runner.support import make_workload, pid_exists, wait_until, write_dag_file


class _DictReader:
    def pull(self, run_pk: int, task_ids: Sequence[str], key: str) -> dict[str, str]:
        return {"hello": '{"n": 99}'} if key == "return_value" and "hello" in task_ids else {}


def _reader() -> XComReader:
    return _DictReader()


@pytest.fixture
def dag_file(tmp_path: Path) -> Path:
    return write_dag_file(tmp_path)


def _assert_gone(pids: Sequence[int]) -> None:
    for pid in pids:
        assert not pid_exists(pid), f"process {pid} is still alive"
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped, not a zombie (if it was ours)


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    executor = LocalExecutor(2, 16, xcom_reader_factory=_reader, kill_grace_seconds=1.0)
    executor.start()
    workers = executor.worker_pids
    yield executor
    executor.shutdown(graceful=False)
    _assert_gone(workers + executor.worker_pids)


def test_success_reports_start_then_finish_with_xcoms(
    executor: LocalExecutor, dag_file: Path
) -> None:
    workload = make_workload(dag_file, "hello")
    executor.submit([workload])
    seen: list[TaskEvent] = []
    finished = wait_for_finished(executor, [workload.key], seen=seen)[workload.key]
    started = seen[0]
    assert isinstance(started, TaskStarted)
    assert started.key == workload.key and started.pid > 0 and started.hostname
    assert finished.state is TaskState.SUCCESS
    assert finished.exit_code == 0
    assert finished.xcoms == (("return_value", '{"greeting": "hi world", "n": 41}'),)


def test_xcoms_come_from_the_workload_then_the_reader(
    executor: LocalExecutor, dag_file: Path
) -> None:
    prefetched = make_workload(
        dag_file, "add", run_pk=1, upstream_xcoms={"hello": {"return_value": '{"n": 1}'}}
    )
    fetched = make_workload(dag_file, "add", run_pk=2)
    executor.submit([prefetched, fetched])
    results = wait_for_finished(executor, [prefetched.key, fetched.key])
    assert results[prefetched.key].xcoms == (("return_value", "2"),)
    assert results[fetched.key].xcoms == (("return_value", "100"),)


def test_outcomes_of_task_code(executor: LocalExecutor, dag_file: Path) -> None:
    expected = {
        "boom": (TaskState.FAILED, ExitReason.TASK_ERROR, "ValueError: bad input 42"),
        "skip_me": (TaskState.SKIPPED, ExitReason.SKIPPED, None),
        "give_up": (TaskState.FAILED, ExitReason.FAIL_NOW, "FailTask: hopeless"),
        "hard_exit": (
            TaskState.FAILED,
            ExitReason.TASK_ERROR,
            "exited with code 3 without reporting a result",
        ),
        "self_kill": (TaskState.FAILED, ExitReason.PROCESS_KILLED, "killed by signal SIGKILL"),
    }
    workloads = {task_id: make_workload(dag_file, task_id) for task_id in expected}
    executor.submit(list(workloads.values()))
    results = wait_for_finished(executor, [w.key for w in workloads.values()])
    for task_id, workload in workloads.items():
        result = results[workload.key]
        assert (result.state, result.exit_reason, result.error) == expected[task_id], task_id
    assert results[workloads["hard_exit"].key].exit_code == 3
    assert results[workloads["self_kill"].key].exit_code == -signal.SIGKILL
    boom_log = Path(workloads["boom"].log_path).read_text()
    assert "Traceback (most recent call last)" in boom_log


def test_a_crashing_task_does_not_hurt_its_worker(tmp_path: Path, dag_file: Path) -> None:
    executor = LocalExecutor(1, 4)
    executor.start()
    try:
        (worker,) = executor.worker_pids
        states = []
        for task_id in ("hard_exit", "self_kill", "noop"):
            workload = make_workload(dag_file, task_id)
            executor.submit([workload])
            states.append(wait_for_finished(executor, [workload.key])[workload.key].state)
        assert states == [TaskState.FAILED, TaskState.FAILED, TaskState.SUCCESS]
        assert executor.worker_pids == [worker]
        assert pid_exists(worker)
    finally:
        executor.shutdown()


def test_log_has_task_output_logging_and_subprocess_output(
    executor: LocalExecutor, dag_file: Path
) -> None:
    workload = make_workload(dag_file, "chatty")
    executor.submit([workload])
    assert wait_for_finished(executor, [workload.key])[workload.key].state is TaskState.SUCCESS
    log = Path(workload.log_path).read_text()
    for text in (
        "Running <d.chatty manual__1 try 1> on host",
        "plain stdout line",
        "plain stderr line",
        "WARNING - a logging record",
        "output of a bash subprocess",
        "Marking try as SUCCESS",
    ):
        assert text in log


def test_log_is_readable_mid_run(executor: LocalExecutor, dag_file: Path) -> None:
    gate = dag_file.parent / "gate.fifo"
    os.mkfifo(gate)
    workload = make_workload(dag_file, "halfway")
    executor.submit([workload])
    log = Path(workload.log_path)
    wait_until(lambda: log.exists() and "halfway there" in log.read_text(), what="mid-run log")
    assert not any(isinstance(e, TaskFinished) for e in executor.events())
    gate.write_text("go")
    assert wait_for_finished(executor, [workload.key])[workload.key].state is TaskState.SUCCESS
    assert "all done" in log.read_text()


def test_execution_timeout_kills_the_whole_process_group(
    executor: LocalExecutor, dag_file: Path
) -> None:
    workload = make_workload(dag_file, "sleepy", execution_timeout=0.5)
    pidfile = dag_file.parent / "grandchild.pid"
    executor.submit([workload])
    seen: list[TaskEvent] = []
    result = wait_for_finished(executor, [workload.key], seen=seen)[workload.key]
    assert (result.state, result.exit_reason, result.error) == (
        TaskState.FAILED,
        ExitReason.TIMEOUT,
        "execution_timeout of 0.5s exceeded",
    )
    # From the try's start to its end as the worker stamped them, not from submit(): starting
    # a worker process is not part of the timeout, and on a busy machine took seconds.
    [started] = [e for e in seen if isinstance(e, TaskStarted) and e.key == workload.key]
    elapsed = (result.at - started.at).total_seconds()
    assert elapsed < 0.5 + 1.0 + 1.0  # timeout + kill grace + slack
    grandchild = int(pidfile.read_text())
    wait_until(lambda: not pid_exists(grandchild), 2.0, "the sleep 60 to die")
    assert "execution_timeout of 0.5s exceeded" in Path(workload.log_path).read_text()


def test_a_dead_worker_fails_its_tries_and_is_replaced(tmp_path: Path, dag_file: Path) -> None:
    os.mkfifo(dag_file.parent / "gate.fifo")  # nobody opens it: halfway blocks forever
    executor = LocalExecutor(1, 4)
    executor.start()
    try:
        (worker,) = executor.worker_pids
        workload = make_workload(dag_file, "halfway")
        executor.submit([workload])
        started = wait_for_started(executor, [workload.key])[workload.key]
        assert isinstance(started, TaskStarted)
        os.kill(worker, signal.SIGKILL)
        result = wait_for_finished(executor, [workload.key])[workload.key]
        assert (result.state, result.exit_reason) == (TaskState.FAILED, ExitReason.WORKER_LOST)
        assert result.error == f"worker process {worker} died (killed by signal SIGKILL)"
        wait_until(lambda: not pid_exists(started.pid), 2.0, "the orphaned try to be killed")
        (replacement,) = executor.worker_pids
        assert replacement != worker
        after = make_workload(dag_file, "noop")
        executor.submit([after])
        assert wait_for_finished(executor, [after.key])[after.key].state is TaskState.SUCCESS
    finally:
        executor.shutdown()
    _assert_gone([worker, replacement])


def test_many_concurrent_tries(dag_file: Path) -> None:
    executor = LocalExecutor(2, 200)
    executor.start()
    try:
        workloads = [make_workload(dag_file, "noop", run_pk=n) for n in range(200)]
        began = time.monotonic()
        executor.submit(workloads)
        results = wait_for_finished(executor, [w.key for w in workloads], timeout=30)
        elapsed = time.monotonic() - began
        assert {r.state for r in results.values()} == {TaskState.SUCCESS}
        print(f"200 no-op tries through 2 workers: {elapsed * 1000:.0f} ms")
    finally:
        executor.shutdown()


def test_submitting_beyond_capacity_is_refused(dag_file: Path) -> None:
    executor = LocalExecutor(1, 2)
    executor.start()
    try:
        assert executor.capacity == 2
        with pytest.raises(ValueError, match="capacity of 2"):
            executor.submit([make_workload(dag_file, "noop", run_pk=n) for n in range(3)])
    finally:
        executor.shutdown()


def test_graceful_shutdown_lets_running_tries_finish(dag_file: Path) -> None:
    gate = dag_file.parent / "gate.fifo"
    os.mkfifo(gate)
    executor = LocalExecutor(2, 4)
    executor.start()
    workers = executor.worker_pids
    workload = make_workload(dag_file, "halfway")
    executor.submit([workload])
    started = wait_for_started(executor, [workload.key])[workload.key]
    opener = threading.Thread(target=gate.write_text, args=("go",))
    opener.start()
    executor.shutdown(graceful=True)
    opener.join()
    finished = [e for e in executor.events() if isinstance(e, TaskFinished)]
    assert [(e.key, e.state) for e in finished] == [(workload.key, TaskState.SUCCESS)]
    _assert_gone([*workers, started.pid])
    assert executor.filenos() == []


def test_hard_shutdown_kills_running_tries(dag_file: Path) -> None:
    os.mkfifo(dag_file.parent / "gate.fifo")
    executor = LocalExecutor(2, 4)
    executor.start()
    workers = executor.worker_pids
    workload = make_workload(dag_file, "halfway")
    executor.submit([workload])
    started = wait_for_started(executor, [workload.key])[workload.key]
    began = time.monotonic()
    executor.shutdown(graceful=False)
    assert time.monotonic() - began < 2.0
    wait_until(lambda: not pid_exists(started.pid), 2.0, "the try to be killed")
    _assert_gone(workers)
    # The caller ordered the kill and knows what it had in flight: nothing is made up for it.
    assert [e for e in executor.events() if isinstance(e, TaskFinished)] == []
    with pytest.raises(RuntimeError):
        executor.submit([workload])


def test_a_hanging_dag_import_fails_its_try_not_the_worker(tmp_path: Path, dag_file: Path) -> None:
    hanging = tmp_path / "hanging.py"
    hanging.write_text("import time\ntime.sleep(60)\n")
    executor = LocalExecutor(1, 4, dag_import_timeout=0.3)
    executor.start()
    try:
        (worker,) = executor.worker_pids
        stuck = make_workload(hanging, "t")
        executor.submit([stuck])
        result = wait_for_finished(executor, [stuck.key])[stuck.key]
        assert (result.exit_reason, result.error) == (
            ExitReason.TASK_ERROR,
            "TimeoutError: importing the DAG file took longer than 0.3s",
        )
        assert "time.sleep(60)" in Path(stuck.log_path).read_text()  # where it hung
        after = make_workload(dag_file, "noop")
        executor.submit([after])
        assert wait_for_finished(executor, [after.key])[after.key].state is TaskState.SUCCESS
        assert executor.worker_pids == [worker]
    finally:
        executor.shutdown()


def test_an_immediate_timeout_hits_the_child_not_the_worker(dag_file: Path) -> None:
    executor = LocalExecutor(1, 8, kill_grace_seconds=1.0)
    executor.start()
    try:
        (worker,) = executor.worker_pids
        # The deadline has passed before the child is even forked: SIGTERM meets it starting up.
        workloads = [
            make_workload(dag_file, "halfway", run_pk=n, execution_timeout=0) for n in range(6)
        ]
        executor.submit(workloads)
        results = wait_for_finished(executor, [w.key for w in workloads])
        assert {r.exit_reason for r in results.values()} == {ExitReason.TIMEOUT}
        after = make_workload(dag_file, "noop", run_pk=99)
        executor.submit([after])
        assert wait_for_finished(executor, [after.key])[after.key].state is TaskState.SUCCESS
        assert executor.worker_pids == [worker]
    finally:
        executor.shutdown()


def test_kill_ends_a_running_try_and_its_group_and_reports_it_marked(
    executor: LocalExecutor, dag_file: Path
) -> None:
    workload = make_workload(dag_file, "sleepy")
    pidfile = dag_file.parent / "grandchild.pid"
    executor.submit([workload])
    wait_for_started(executor, [workload.key])
    wait_until(pidfile.exists, what="the grandchild to start")
    began = time.monotonic()
    executor.kill([workload.key])
    result = wait_for_finished(executor, [workload.key])[workload.key]
    assert (result.state, result.exit_reason) == (TaskState.FAILED, ExitReason.MARKED)
    assert time.monotonic() - began < 1.0 + 1.0  # kill grace + slack
    grandchild = int(pidfile.read_text())
    wait_until(lambda: not pid_exists(grandchild), 2.0, "the sleep 60 to die")
    assert "changed by a person" in Path(workload.log_path).read_text()
    executor.kill([workload.key])  # a finished try: nothing to do, nothing breaks


# ----------------------------------------------------------------- the callback timeout


@pytest.fixture
def hasty(tmp_path: Path) -> Iterator[LocalExecutor]:
    """Callbacks get 0.5 s (SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS), the kill grace 1 s."""
    executor = LocalExecutor(1, 4, kill_grace_seconds=1.0, callback_timeout=0.5)
    executor.start()
    workers = executor.worker_pids
    yield executor
    executor.shutdown(graceful=False)
    _assert_gone(workers + executor.worker_pids)


def _elapsed(seen: Sequence[TaskEvent], result: TaskFinished) -> float:
    [started] = [e for e in seen if isinstance(e, TaskStarted) and e.key == result.key]
    return (result.at - started.at).total_seconds()


def test_a_try_s_callback_that_outlasts_the_callback_timeout_is_stopped(
    hasty: LocalExecutor, tmp_path: Path
) -> None:
    dag_file, notes, _ = slow_callbacks(tmp_path)
    workload = make_workload(dag_file, "fine", dag_id="cb")
    hasty.submit([workload])
    seen: list[TaskEvent] = []
    result = wait_for_finished(hasty, [workload.key], seen=seen)[workload.key]
    # The task's outcome stands, reported by the try itself once its callback was stopped.
    assert (result.state, result.exit_reason, result.exit_code) == (
        TaskState.SUCCESS,
        ExitReason.SUCCESS,
        0,
    )
    assert result.callbacks_done and result.xcoms == (("return_value", "1"),)
    assert _elapsed(seen, result) < 10  # the timeout (and a loaded machine's slack), not 30 s
    assert _notes(notes) == ["slow_alert started"]  # stopped, and next_alert not called
    log = Path(workload.log_path).read_text()
    assert (
        "on_success_callback[0] slow_alert of task 'fine' did not finish within 0.5s "
        "(SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS): stopped"
    ) in log
    assert "the on_success_callback of task 'fine' (try 1) did not finish within 0.5s" in log


def test_a_callback_that_ignores_its_stop_is_killed_with_its_group(
    hasty: LocalExecutor, tmp_path: Path
) -> None:
    dag_file, notes, pidfile = slow_callbacks(tmp_path)
    workload = make_workload(dag_file, "bad", dag_id="cb")
    hasty.submit([workload])
    seen: list[TaskEvent] = []
    result = wait_for_finished(hasty, [workload.key], seen=seen)[workload.key]
    # The outcome the try announced before its callbacks: failed by the task's own error,
    # callbacks counted as run (the scheduler must not run them again), killed by SIGKILL.
    assert (result.state, result.exit_reason, result.error) == (
        TaskState.FAILED,
        ExitReason.TASK_ERROR,
        "ValueError: bad",
    )
    assert result.callbacks_done and result.exit_code == -signal.SIGKILL
    assert 0.5 + 1.0 <= _elapsed(seen, result) < 10  # timeout + grace, not the 30 s loop
    assert _notes(notes) == ["stubborn started", "stubborn ignored its stop"]
    assert (
        "the on_failure_callback of task 'bad' (try 1) did not finish within 0.5s"
        in Path(workload.log_path).read_text()
    )
    grandchild = int(pidfile.read_text())
    wait_until(lambda: not pid_exists(grandchild), 2.0, "the callback's subprocess to die")


def test_execution_timeout_does_not_cover_the_callbacks(
    hasty: LocalExecutor, tmp_path: Path
) -> None:
    # quick() returns at once; its 1 s success callback outlasts the 0.5 s execution_timeout
    # (as in Airflow, which does not count callbacks in it) and the 0.5 s callback timeout.
    slow = LocalExecutor(1, 2, kill_grace_seconds=1.0, callback_timeout=5.0)
    slow.start()
    try:
        dag_file, notes, _ = slow_callbacks(tmp_path)
        workload = make_workload(dag_file, "quick", dag_id="cb")
        slow.submit([workload])
        result = wait_for_finished(slow, [workload.key])[workload.key]
        assert (result.state, result.exit_reason) == (TaskState.SUCCESS, ExitReason.SUCCESS)
        assert _notes(notes) == ["brief_alert finished"]
    finally:
        slow.shutdown(graceful=False)


def test_a_callback_request_that_outlasts_the_callback_timeout_is_stopped(
    hasty: LocalExecutor, tmp_path: Path
) -> None:
    dag_file, notes, _ = slow_callbacks(tmp_path)
    log = tmp_path / "dag_callbacks.log"
    request = CallbackRequest(
        7,
        CallbackKind.DAG_SUCCESS,
        make_workload(dag_file, "fine", dag_id="cb"),
        str(log),
        reason="success",
    )
    started = time.monotonic()
    hasty.run_callbacks([request])
    done: list[CallbackDone] = []
    while not done and time.monotonic() - started < 10:
        select.select(hasty.filenos(), [], [], 0.1)
        hasty.events()
        done += hasty.callbacks_done()
    [report] = done
    assert report.id == 7 and report.error == (
        "on_success_callback of DAG 'cb' for run manual__1 did not finish within 0.5s "
        "(SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS): stopped; nothing else changes"
    )
    # Far less than the callback's 30 s sleep, though it counts the worker importing the DAG.
    assert time.monotonic() - started < 20
    assert _notes(notes) == ["slow_alert started"]
    text = log.read_text()
    assert "on_success_callback[0] slow_alert of DAG 'cb' did not finish within 0.5s" in text
    assert "on_success_callback of DAG 'cb' for run manual__1 did not finish" in text
