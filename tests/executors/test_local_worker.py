"""The worker loop driven one step at a time, in the test's own process."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipstream.core.records import ExitReason, TaskFinished, TaskStarted, Workload
from slipstream.core.states import TaskState
from slipstream.executors.local_worker import LocalWorker
from slipstream.executors.wire import Channel, Drain, RunTry
from tests.runner.support import make_workload, pid_exists, wait_until, write_dag_file


@pytest.fixture
def pair() -> Iterator[tuple[LocalWorker, Channel]]:
    ours, theirs = socket.socketpair()
    worker = LocalWorker(theirs, hostname="testhost", kill_grace_seconds=0.5)
    channel = Channel(ours)
    yield worker, channel
    worker.close()
    channel.close()


def _step_until_finished(
    worker: LocalWorker, channel: Channel, count: int, timeout: float = 10.0
) -> list[object]:
    messages: list[object] = []
    deadline = time.monotonic() + timeout
    while sum(isinstance(m, TaskFinished) for m in messages) < count:
        assert time.monotonic() < deadline, f"only {messages} after {timeout}s"
        worker.step(timeout=deadline - time.monotonic())
        messages += channel.receive()
    return messages


def _submit(channel: Channel, *workloads: Workload) -> None:
    for workload in workloads:
        channel.send(RunTry(workload))


def test_one_try_per_step_sequence(pair: tuple[LocalWorker, Channel], tmp_path: Path) -> None:
    worker, channel = pair
    dag_file = write_dag_file(tmp_path)
    workload = make_workload(dag_file, "hello")
    _submit(channel, workload)
    assert worker.step(timeout=5.0)  # reads the workload, forks, reports the start
    (started,) = channel.receive()
    assert isinstance(started, TaskStarted)
    assert (started.key, started.hostname) == (workload.key, "testhost")
    assert worker.running == 1
    (finished,) = _step_until_finished(worker, channel, 1)
    assert isinstance(finished, TaskFinished)
    assert finished.state is TaskState.SUCCESS
    assert worker.running == 0
    assert not pid_exists(started.pid)


def test_timeout_is_the_select_deadline(pair: tuple[LocalWorker, Channel], tmp_path: Path) -> None:
    worker, channel = pair
    dag_file = write_dag_file(tmp_path)
    os.mkfifo(tmp_path / "gate.fifo")  # halfway blocks on it forever; SIGTERM ends it
    workload = make_workload(dag_file, "halfway", execution_timeout=0.2)
    _submit(channel, workload)
    began = time.monotonic()
    messages = _step_until_finished(worker, channel, 1)
    finished = messages[-1]
    assert isinstance(finished, TaskFinished)
    assert (finished.exit_reason, finished.error) == (
        ExitReason.TIMEOUT,
        "execution_timeout of 0.2s exceeded",
    )
    assert time.monotonic() - began < 2.0  # SIGTERM was enough: no wait for the grace period


def test_import_error_is_reported_as_a_failed_try(
    pair: tuple[LocalWorker, Channel], tmp_path: Path
) -> None:
    worker, channel = pair
    dag_file = tmp_path / "broken.py"
    dag_file.write_text("raise RuntimeError('cannot import me')\n")
    workload = make_workload(dag_file, "t")
    _submit(channel, workload)
    finished = _step_until_finished(worker, channel, 1)[-1]
    assert isinstance(finished, TaskFinished)
    assert (finished.state, finished.exit_reason, finished.error) == (
        TaskState.FAILED,
        ExitReason.TASK_ERROR,
        "RuntimeError: cannot import me",
    )
    log = Path(workload.log_path).read_text()
    assert "Could not load DAG 'd' from" in log
    assert "raise RuntimeError('cannot import me')" in log


def test_a_changed_dag_file_is_imported_again(
    pair: tuple[LocalWorker, Channel], tmp_path: Path
) -> None:
    worker, channel = pair
    dag_file = tmp_path / "versions.py"
    source = (
        "from slipstream import DAG, task\n"
        "with DAG('d', schedule=None):\n"
        "    @task\n"
        "    def t():\n"
        "        return {value!r}\n"
        "    t()\n"
    )
    results = []
    for run_pk, value in enumerate(["first", "second version"]):
        dag_file.write_text(source.format(value=value))
        _submit(channel, make_workload(dag_file, "t", run_pk=run_pk))
        finished = _step_until_finished(worker, channel, 1)[-1]
        assert isinstance(finished, TaskFinished)
        results.append(finished.xcoms)
    assert results == [(("return_value", '"first"'),), (("return_value", '"second version"'),)]


def test_drain_finishes_running_tries_then_stops(
    pair: tuple[LocalWorker, Channel], tmp_path: Path
) -> None:
    worker, channel = pair
    dag_file = write_dag_file(tmp_path)
    _submit(channel, make_workload(dag_file, "noop"))
    channel.send(Drain())
    _step_until_finished(worker, channel, 1)
    assert not worker.step(timeout=1.0)


def test_eof_kills_running_tries_and_stops(
    pair: tuple[LocalWorker, Channel], tmp_path: Path
) -> None:
    worker, channel = pair
    dag_file = write_dag_file(tmp_path)
    os.mkfifo(tmp_path / "gate.fifo")
    _submit(channel, make_workload(dag_file, "halfway"))
    worker.step(timeout=5.0)
    (started,) = channel.receive()
    assert isinstance(started, TaskStarted)
    channel.sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 5.0
    while worker.step(timeout=1.0):
        assert time.monotonic() < deadline
    assert not pid_exists(started.pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(started.pid, os.WNOHANG)


def test_large_results_do_not_block_the_child(
    pair: tuple[LocalWorker, Channel], tmp_path: Path
) -> None:
    worker, channel = pair
    dag_file = tmp_path / "big.py"
    dag_file.write_text(
        "from slipstream import DAG, task\n"
        "with DAG('d', schedule=None):\n"
        "    @task\n"
        "    def big():\n"
        "        return 'x' * 3_000_000\n"
        "    big()\n"
    )
    _submit(channel, make_workload(dag_file, "big"))
    finished = _step_until_finished(worker, channel, 1)[-1]
    assert isinstance(finished, TaskFinished)
    assert len(finished.xcoms[0][1]) == 3_000_002


def test_timeout_calls_on_kill_and_notes_it_in_the_log(
    pair: tuple[LocalWorker, Channel], tmp_path: Path
) -> None:
    worker, channel = pair
    gate, marker = tmp_path / "gate.fifo", tmp_path / "on_kill.txt"
    os.mkfifo(gate)
    dag_file = tmp_path / "stubborn.py"
    dag_file.write_text(
        "from pathlib import Path\n"
        "from slipstream import DAG, BaseOperator\n"
        "class Stubborn(BaseOperator):\n"
        "    def execute(self, context):\n"
        f"        open({str(gate)!r}).read()\n"
        "    def on_kill(self):\n"
        f"        Path({str(marker)!r}).write_text('cleaned up')\n"
        "with DAG('d', schedule=None):\n"
        "    Stubborn(task_id='t')\n"
    )
    workload = make_workload(dag_file, "t", execution_timeout=0.1)
    _submit(channel, workload)
    finished = _step_until_finished(worker, channel, 1)[-1]
    assert isinstance(finished, TaskFinished)
    assert finished.exit_reason is ExitReason.TIMEOUT
    assert marker.read_text() == "cleaned up"
    log = Path(workload.log_path).read_text()
    assert "ERROR - execution_timeout of 0.1s exceeded; terminating process group" in log
    assert "Received SIGTERM: calling on_kill() of task t" in log


def test_processes_a_finished_task_left_behind_are_killed(
    pair: tuple[LocalWorker, Channel], tmp_path: Path
) -> None:
    worker, channel = pair
    pidfile = tmp_path / "leftover.pid"
    dag_file = tmp_path / "leaky.py"
    dag_file.write_text(
        "from slipstream import DAG, BashOperator\n"
        "with DAG('d', schedule=None):\n"
        "    BashOperator(task_id='t',\n"
        f"        bash_command='sleep 60 >/dev/null 2>&1 & echo $! > {pidfile}')\n"
    )
    _submit(channel, make_workload(dag_file, "t"))
    finished = _step_until_finished(worker, channel, 1)[-1]
    assert isinstance(finished, TaskFinished) and finished.state is TaskState.SUCCESS
    leftover = int(pidfile.read_text())
    # Killed at once; then reparented to init, which reaps it in its own time.
    wait_until(lambda: not pid_exists(leftover), 2.0, "the background sleep to die")


def test_work_arriving_with_eof_is_not_started(
    pair: tuple[LocalWorker, Channel], tmp_path: Path
) -> None:
    worker, channel = pair
    workload = make_workload(write_dag_file(tmp_path), "noop")
    _submit(channel, workload)
    channel.flush()
    channel.sock.shutdown(socket.SHUT_WR)
    assert not worker.step(timeout=5.0)
    assert channel.receive() == []  # no TaskStarted: nobody would have recorded the try
    assert not Path(workload.log_path).exists()


def test_the_next_try_starts_in_the_spare_forked_ahead_of_it(
    pair: tuple[LocalWorker, Channel], tmp_path: Path
) -> None:
    worker, channel = pair
    dag_file = write_dag_file(tmp_path)
    first = make_workload(dag_file, "hello")
    _submit(channel, first)
    _step_until_finished(worker, channel, 1)
    spare = worker.spare_pid
    assert spare is not None and pid_exists(spare)
    second = make_workload(dag_file, "hello", try_number=2)
    _submit(channel, second)
    messages = _step_until_finished(worker, channel, 1)
    started = next(m for m in messages if isinstance(m, TaskStarted))
    finished = next(m for m in messages if isinstance(m, TaskFinished))
    assert started.pid == spare
    assert finished.state is TaskState.SUCCESS
    assert finished.xcoms == (("return_value", '{"greeting": "hi world", "n": 41}'),)
    log = Path(second.log_path).read_text()
    assert "Running <d.hello manual__1 try 2>" in log


def test_a_spare_that_predates_a_changed_dag_file_is_not_used(
    pair: tuple[LocalWorker, Channel], tmp_path: Path
) -> None:
    worker, channel = pair
    dag_file = tmp_path / "changing.py"
    source = (
        "from datetime import datetime\n"
        "from slipstream import DAG, task\n"
        "with DAG('d', schedule=None, start_date=datetime(2024, 1, 1)) as dag:\n"
        "    @task\n"
        "    def which():\n"
        "        return {version!r}\n"
        "    which()\n"
    )
    dag_file.write_text(source.format(version="v1"))
    _submit(channel, make_workload(dag_file, "which"))
    [finished] = [
        m for m in _step_until_finished(worker, channel, 1) if isinstance(m, TaskFinished)
    ]
    assert finished.xcoms == (("return_value", '"v1"'),)
    stale = worker.spare_pid
    assert stale is not None
    dag_file.write_text(source.format(version="v2, longer"))
    _submit(channel, make_workload(dag_file, "which", try_number=2))
    messages = _step_until_finished(worker, channel, 1)
    started = next(m for m in messages if isinstance(m, TaskStarted))
    finished = next(m for m in messages if isinstance(m, TaskFinished))
    assert started.pid != stale and not pid_exists(stale)
    assert finished.xcoms == (("return_value", '"v2, longer"'),)


def test_an_idle_worker_lets_its_spare_go(tmp_path: Path) -> None:
    ours, theirs = socket.socketpair()
    worker = LocalWorker(theirs, hostname="testhost", spare_idle_seconds=0.2)
    channel = Channel(ours)
    try:
        _submit(channel, make_workload(write_dag_file(tmp_path), "hello"))
        _step_until_finished(worker, channel, 1)
        spare = worker.spare_pid
        assert spare is not None
        deadline = time.monotonic() + 5.0
        while worker.spare_pid is not None:
            assert time.monotonic() < deadline, "the spare outlived the idle timeout"
            worker.step(timeout=0.5)
        assert not pid_exists(spare)
    finally:
        worker.close()
        channel.close()
