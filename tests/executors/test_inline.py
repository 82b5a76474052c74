from __future__ import annotations

import os
import time
from pathlib import Path

import jinja2
import pytest

from slipstream.core.records import (
    CallbackKind,
    CallbackRequest,
    ExitReason,
    TaskFinished,
    TaskStarted,
)
from slipstream.core.states import TaskState
from slipstream.executors.inline import InlineExecutor
from tests.executors.slow_callbacks import notes_of, slow_callbacks
from tests.runner.support import make_workload, write_dag_file


def test_runs_in_submit_and_tees_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dag_file = write_dag_file(tmp_path)
    executor = InlineExecutor()
    executor.start()
    workloads = [make_workload(dag_file, "chatty"), make_workload(dag_file, "boom")]
    executor.submit(workloads)
    events = executor.events()
    assert executor.events() == []
    assert executor.filenos() == []
    assert [type(e) for e in events] == [TaskStarted, TaskFinished, TaskStarted, TaskFinished]
    started = events[0]
    assert isinstance(started, TaskStarted) and started.pid == os.getpid()
    chatty, boom = events[1], events[3]
    assert isinstance(chatty, TaskFinished) and chatty.state is TaskState.SUCCESS
    assert isinstance(boom, TaskFinished)
    assert (boom.exit_reason, boom.error) == (ExitReason.TASK_ERROR, "ValueError: bad input 42")
    log = Path(workloads[0].log_path).read_text()
    for text in ("Running <d.chatty", "plain stdout line", "plain stderr line", "a logging record"):
        assert text in log
    assert "Traceback" in Path(workloads[1].log_path).read_text()
    assert "plain stdout line" in capsys.readouterr().out  # and on the console too
    executor.shutdown()


def test_the_dag_keeps_its_templates_across_tries(tmp_path: Path) -> None:
    dag_file = write_dag_file(tmp_path)
    executor = InlineExecutor()
    for run_pk, who in enumerate(["a", "b"]):
        executor.submit([make_workload(dag_file, "hello", run_pk=run_pk, conf={"who": who})])
    finished = [e for e in executor.events() if isinstance(e, TaskFinished)]
    assert [f.xcoms[0][1] for f in finished] == [
        '{"greeting": "hi a", "n": 41}',
        '{"greeting": "hi b", "n": 41}',
    ]


def test_import_error_and_capacity(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def broken(:\n")
    executor = InlineExecutor(parallelism=1)
    assert executor.capacity == 1
    executor.submit([make_workload(broken, "t")])
    finished = executor.events()[-1]
    assert isinstance(finished, TaskFinished)
    assert finished.error is not None and finished.error.startswith("SyntaxError")
    with pytest.raises(ValueError, match="capacity"):
        executor.submit([make_workload(broken, "t", run_pk=n) for n in range(2)])


SLEEPER = """
import time
from datetime import datetime
from pathlib import Path
from slipstream import DAG
from slipstream.authoring.task import BaseOperator

class Sleeper(BaseOperator):
    def execute(self, context):
        time.sleep(30)
        return "never"

    def on_kill(self):
        Path({killed!r}).write_text("on_kill called")

with DAG("d", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    Sleeper(task_id="slow", execution_timeout=1.0)
    Sleeper(task_id="unbounded")
"""


def test_execution_timeout_interrupts_the_try_as_the_local_executor_does(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    dag_file = tmp_path / "sleeper.py"
    dag_file.write_text(SLEEPER.format(killed=str(killed)))
    executor = InlineExecutor()
    # Rendering imports Jinja on first use: imported already, the second is spent in execute().
    jinja2.Environment()
    executor.submit([make_workload(dag_file, "slow", execution_timeout=1.0)])
    finished = executor.events()[-1]
    assert isinstance(finished, TaskFinished)
    assert (finished.state, finished.exit_reason) == (TaskState.FAILED, ExitReason.TIMEOUT)
    assert finished.error == "execution_timeout of 1s exceeded"
    assert finished.xcoms == ()
    assert killed.read_text() == "on_kill called"
    assert (
        "execution_timeout of 1s exceeded"
        in Path(make_workload(dag_file, "slow").log_path).read_text()
    )


def test_callbacks_are_bounded_in_process_too(tmp_path: Path) -> None:
    # `dags test` runs callbacks in its own process: the same bound holds there.
    dag_file, notes, _ = slow_callbacks(tmp_path)
    executor = InlineExecutor(callback_timeout=0.3)
    workload = make_workload(dag_file, "fine", dag_id="cb")
    started = time.monotonic()
    executor.submit([workload])
    [_, finished] = executor.events()
    assert isinstance(finished, TaskFinished)
    assert (finished.state, finished.callbacks_done) == (TaskState.SUCCESS, True)
    assert notes_of(notes) == ["slow_alert started"]
    assert (
        "slow_alert of task 'fine' did not finish within 0.3s"
        in Path(workload.log_path).read_text()
    )
    request = CallbackRequest(
        3,
        CallbackKind.DAG_SUCCESS,
        make_workload(dag_file, "fine", dag_id="cb"),
        str(tmp_path / "dag_callbacks.log"),
        reason="success",
    )
    executor.run_callbacks([request])
    [done] = executor.callbacks_done()
    assert done.id == 3 and done.error is not None and "within 0.3s" in done.error
    assert time.monotonic() - started < 20  # not the callbacks' 30 s sleeps
    # execution_timeout covers no callback: quick()'s 1 s callback outlasts its 0.5 s.
    generous = InlineExecutor(callback_timeout=5)
    generous.submit([make_workload(dag_file, "quick", dag_id="cb")])
    quick = generous.events()[-1]
    assert isinstance(quick, TaskFinished) and quick.state is TaskState.SUCCESS
    assert notes_of(notes)[-1] == "brief_alert finished"
