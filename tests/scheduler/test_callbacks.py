"""Callbacks end to end: the real scheduler process, its local executor and real workers.

Each callback appends one JSON line (what it was, what context it got, which process ran it) to
a file per DAG, so the tests can say that each fired exactly once, with what, and where.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from slipstream.clock import SystemClock
from slipstream.core.log_paths import dag_callbacks_log_path, log_path_for
from slipstream.core.records import CallbackRequest, ExitReason, TaskEvent, Workload
from slipstream.core.states import RunState, TaskState
from slipstream.executors.inline import InlineExecutor
from slipstream.scheduler.callbacks import dag_reason
from slipstream.scheduler.tick import Scheduler
from slipstream.services.run_changes import RunChangeService
from slipstream.store import callbacks as callbacks_store
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness
from tests.scheduler.test_loop import Deployment, deployment, wait_for

__all__ = ["deployment"]  # the fixture, shared with the scheduler's loop tests

RECORDER = """
import json, os
from datetime import datetime, timedelta
from slipstream import DAG, SkipTask, task, BashOperator

OUT = {out!r}

def record(name):
    def callback(context):
        ti = context.get("ti")
        exc = context.get("exception")
        line = {{
            "cb": name,
            "dag": context["dag"].dag_id,
            "run_id": context["run_id"],
            "task": getattr(context.get("task"), "task_id", None),
            "try": getattr(ti, "try_number", None),
            "exception": None if exc is None else f"{{type(exc).__name__}}: {{exc}}",
            "reason": context.get("reason"),
            "pid": os.getpid(),
        }}
        with open(OUT, "a") as f:
            f.write(json.dumps(line) + "\\n")
    callback.__name__ = name
    return callback
"""


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def names(path: Path) -> list[str]:
    return [line["cb"] for line in lines(path)]


def write(deployment: Deployment, name: str, out: Path, body: str) -> None:
    deployment.write_dag(name, RECORDER.format(out=str(out)) + body)


@pytest.mark.slow
def test_callbacks_fire_once_each_with_airflows_context(
    deployment: Deployment, tmp_path: Path
) -> None:
    failing, passing = tmp_path / "failing.jsonl", tmp_path / "passing.jsonl"
    write(
        deployment,
        "failing",
        failing,
        """
with DAG("failing", schedule=None, start_date=datetime(2024, 1, 1),
         on_failure_callback=record("dag_failure"), on_success_callback=record("dag_success"),
         default_args={"on_execute_callback": record("execute")}) as dag:
    @task(retries=1, retry_delay=timedelta(seconds=0),
          on_retry_callback=record("retry"), on_failure_callback=record("failure"))
    def boom():
        raise ValueError("bad input 42")
    boom()
""",
    )
    write(
        deployment,
        "passing",
        passing,
        """
def broken(context):
    raise RuntimeError("alert service down")

with DAG("passing", schedule=None, start_date=datetime(2024, 1, 1),
         on_success_callback=[broken, record("dag_success")],
         default_args={"on_success_callback": [record("s1"), record("s2")]}) as dag:
    @task
    def ok():
        return 1

    @task(on_skipped_callback=record("skipped"))
    def skip_me():
        raise SkipTask("not today")

    @task(on_skipped_callback=record("skipped_by_rule"))
    def after_skip():
        return 2

    ok() >> skip_me() >> after_skip()
""",
    )
    deployment.start()
    failed = deployment.finished(deployment.trigger("failing"))
    passed = deployment.finished(deployment.trigger("passing"))
    assert failed.state is RunState.FAILED and passed.state is RunState.SUCCESS

    # DAG callbacks are requested after the run ends: wait for their lines.
    wait_for(lambda: "dag_failure" in names(failing), 20, "the DAG failure callback")
    wait_for(lambda: "dag_success" in names(passing), 20, "the DAG success callback")
    assert names(failing) == ["execute", "retry", "execute", "failure", "dag_failure"]
    got = lines(failing)
    assert [(g["try"], g["exception"]) for g in got[:4]] == [
        (1, None),
        (1, "ValueError: bad input 42"),
        (2, None),
        (2, "ValueError: bad input 42"),
    ]
    dag_failure = got[-1]
    assert dag_failure["reason"] == "task_failure" and dag_failure["run_id"] == failed.run_id
    assert dag_failure["task"] == "boom"  # the run's last task instance gives the context

    # default_args lists, in order; a skip raised by the task calls on_skipped, a trigger
    # rule's skip does not; a raising DAG callback is logged and the next one still runs.
    assert names(passing) == ["s1", "s2", "skipped", "dag_success"]
    assert lines(passing)[-1]["reason"] == "success"
    states = {t.task_id: t.state for t in deployment.runs.task_instances("passing", passed.run_id)}
    assert states == {
        "ok": TaskState.SUCCESS,
        "skip_me": TaskState.SKIPPED,
        "after_skip": TaskState.SKIPPED,
    }
    folder = deployment.settings.log_folder
    dag_log = dag_callbacks_log_path(folder, "passing", passed.run_id).read_text()
    assert "alert service down" in dag_log and "Traceback" in dag_log
    assert "on_success_callback[0] broken of DAG 'passing' raised" in dag_log
    try_log = log_path_for(folder, "failing", failed.run_id, "boom", 2).read_text()
    assert "Executing on_failure_callback[0] failure of task 'boom'" in try_log


@pytest.mark.slow
def test_a_killed_try_gets_its_failure_callback_from_a_callback_process(
    deployment: Deployment, tmp_path: Path
) -> None:
    out, pidfile = tmp_path / "killed.jsonl", tmp_path / "try.pid"
    deployment.env["SLIPSTREAM_INFRA_RETRIES"] = "0"  # so the kill fails the task at once
    write(
        deployment,
        "killed",
        out,
        f"""
with DAG("killed", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task(on_failure_callback=record("failure"), on_retry_callback=record("retry"))
    def victim():
        import time
        with open({str(pidfile)!r}, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)
    victim()
""",
    )
    deployment.start()
    run = deployment.trigger("killed")
    wait_for(lambda: pidfile.exists() and pidfile.read_text(), 30, "the try to start")
    try_pid = int(pidfile.read_text())
    os.kill(try_pid, signal.SIGKILL)
    done = deployment.finished(run)
    assert done.state is RunState.FAILED
    wait_for(lambda: names(out), 20, "the failure callback")
    [line] = lines(out)
    assert line["cb"] == "failure" and line["try"] == 1 and line["task"] == "victim"
    assert line["exception"] == "TryFailed: killed by signal SIGKILL"
    assert line["pid"] != try_pid  # a process forked for the callback, not the dead try
    try_log = log_path_for(deployment.settings.log_folder, "killed", run.run_id, "victim", 1)
    assert "ended without running its callbacks" in try_log.read_text()

    def none_stored() -> bool:
        with deployment.db.read() as conn:
            return callbacks_store.pending(conn) == []

    wait_for(none_stored, 20, "the request's row to go once it ran")


@pytest.mark.slow
def test_a_timed_out_try_calls_back_itself_and_a_marked_one_calls_nothing(
    deployment: Deployment, tmp_path: Path
) -> None:
    out, pids, gate = tmp_path / "timing.jsonl", tmp_path / "pids", tmp_path / "started"
    write(
        deployment,
        "timing",
        out,
        f"""
def note_pid():
    with open({str(pids)!r}, "a") as f:
        f.write(str(os.getpid()) + "\\n")

with DAG("timing", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task(execution_timeout=timedelta(seconds=1),
          on_failure_callback=record("failure"), on_retry_callback=record("retry"))
    def slow():
        import time
        note_pid()
        time.sleep(60)
    slow()

with DAG("marked", schedule=None, start_date=datetime(2024, 1, 1),
         on_failure_callback=record("dag_failure")) as marked:
    @task(on_failure_callback=record("marked_failure"), retries=2)
    def waits():
        import time
        open({str(gate)!r}, "w").close()
        time.sleep(60)
    waits()
""",
    )
    deployment.start()
    timed = deployment.finished(deployment.trigger("timing"))
    assert timed.state is RunState.FAILED
    wait_for(lambda: names(out), 20, "the failure callback")
    [line] = lines(out)
    assert line["cb"] == "failure" and line["exception"].startswith("TryTimedOut")
    # Run by the try's own process, within the kill grace: no callback process was needed.
    assert line["pid"] == int(pids.read_text().split()[0])

    run = deployment.trigger("marked")
    wait_for(gate.exists, 30, "the try to start")
    wait_for(
        lambda: deployment.runs.task_instances("marked", run.run_id)[0].state is TaskState.RUNNING,
        30,
        "the try's start to be recorded",
    )
    changes = RunChangeService(deployment.db, clock=SystemClock(), wakeup=deployment.wakeup)
    changes.mark_run("marked", run.run_id, RunState.FAILED, by="test")
    wait_for(
        lambda: (
            deployment.runs.tries("marked", run.run_id, "waits")[0].exit_reason is ExitReason.MARKED
        ),
        30,
        "the stopped try's own report",
    )
    with deployment.db.read() as conn:
        assert callbacks_store.pending(conn) == []  # stored with the end, had one been due
    assert deployment.runs.get("marked", run.run_id).state is RunState.FAILED
    assert deployment.runs.task_instances("marked", run.run_id)[0].state is TaskState.FAILED
    # As in Airflow, a person's mark calls neither the task's nor the DAG's callbacks.
    assert names(out) == ["failure"]


@pytest.mark.parametrize(
    ("outcome", "reason", "expected"),
    [
        (RunState.SUCCESS, None, "success"),
        (RunState.FAILED, "tasks failed: a, b", "task_failure"),
        (RunState.FAILED, "deadlock: tasks can never run: c", "all_tasks_deadlocked"),
        (RunState.FAILED, "dagrun_timeout of 60s: timed out", "timed_out"),
    ],
)
def test_dag_reason_speaks_airflows_words(
    outcome: RunState, reason: str | None, expected: str
) -> None:
    assert dag_reason(outcome, reason) == expected


class _DiesBeforeCallbacks(InlineExecutor):
    """Takes callback requests and never runs them: a scheduler killed right after its pass
    committed them."""

    def run_callbacks(self, requests: Sequence[CallbackRequest]) -> None:
        self.dropped = list(requests)


def stored(harness: Harness) -> list[callbacks_store.StoredCallback]:
    with harness.db.read() as conn:
        return callbacks_store.pending(conn)


def test_a_stored_request_outlives_its_scheduler_and_runs_once(
    harness: Harness, tmp_path: Path
) -> None:
    out = tmp_path / "once.jsonl"
    harness.write_dag(
        "once",
        RECORDER.format(out=str(out))
        + """
with DAG("once", schedule=None, start_date=datetime(2024, 1, 1),
         on_success_callback=record("dag_success")) as dag:
    @task
    def only():
        return 1
    only()
""",
    )
    dying = _DiesBeforeCallbacks(clock=harness.clock)
    first = Scheduler(harness.db, dying, clock=harness.clock, settings=harness.settings)
    first.start()
    run = harness.runs.trigger("once").run
    for _ in range(5):
        first.tick([Hint.queued_run("once")])
    assert harness.run("once", run.run_id).state is RunState.SUCCESS
    [request] = dying.dropped
    assert [s.kind for s in stored(harness)] == ["dag_on_success_callback"]
    assert not out.exists()

    for _ in range(2):  # a restart runs it; the next restart finds nothing left to run
        harness.scheduler = harness.new_scheduler()
        harness.scheduler.start()
        harness.settle()
    assert names(out) == ["dag_success"]
    assert lines(out)[0]["reason"] == "success" and lines(out)[0]["run_id"] == run.run_id
    assert stored(harness) == []
    assert request.id not in {s.id for s in stored(harness)}


def test_no_row_and_no_request_when_nothing_would_be_called(harness: Harness) -> None:
    harness.write_dag(
        "quiet",
        """
from datetime import datetime
from slipstream import DAG, task
with DAG("quiet", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def fails():
        raise ValueError("no one is told")
    fails()
""",
    )
    run = harness.runs.trigger("quiet").run
    harness.settle((Hint.queued_run("quiet"),))
    assert harness.run("quiet", run.run_id).state is RunState.FAILED
    assert stored(harness) == []


def test_a_try_lost_with_its_scheduler_calls_on_retry_through_the_executor(
    harness: Harness, tmp_path: Path
) -> None:
    out = tmp_path / "lost.jsonl"
    harness.write_dag(
        "lost",
        RECORDER.format(out=str(out))
        + """
with DAG("lost", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task(on_retry_callback=record("retry"), on_success_callback=record("success"))
    def one():
        return 1
    one()
""",
    )
    dead = Scheduler(harness.db, _Blackhole(), clock=harness.clock, settings=harness.settings)
    dead.start()
    run = harness.runs.trigger("lost").run
    dead.tick([Hint.queued_run("lost")])
    harness.scheduler = harness.new_scheduler()
    harness.scheduler.start()
    harness.settle((Hint.queued_run("lost"),))
    assert harness.run("lost", run.run_id).state is RunState.SUCCESS
    # Lost on the infrastructure budget: up_for_retry, so on_retry_callback, as Airflow 3.1+
    # calls it for a killed task that will be retried; then the second try succeeds.
    assert names(out) == ["retry", "success"]
    retry = lines(out)[0]
    assert retry["try"] == 1 and retry["exception"] is not None
    assert retry["exception"].startswith("TryFailed: its scheduler stopped")
    assert stored(harness) == []


def test_an_empty_task_with_a_success_callback_runs_to_call_it(
    harness: Harness, tmp_path: Path
) -> None:
    out = tmp_path / "empty.jsonl"
    harness.write_dag(
        "empty",
        RECORDER.format(out=str(out))
        + """
from slipstream import EmptyOperator
with DAG("empty", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    EmptyOperator(task_id="done", on_success_callback=record("success"))
    EmptyOperator(task_id="silent")
""",
    )
    run = harness.runs.trigger("empty").run
    harness.settle((Hint.queued_run("empty"),))
    assert harness.run("empty", run.run_id).state is RunState.SUCCESS
    assert names(out) == ["success"]
    assert [t.try_number for t in harness.runs.task_instances("empty", run.run_id)] == [1, 0]


class _Blackhole:
    """An executor that accepts work and never reports: a scheduler that died mid-try."""

    capacity = 32

    def start(self) -> None: ...

    def submit(self, workloads: Sequence[Workload]) -> None:
        self.submitted = list(workloads)

    def events(self) -> list[TaskEvent]:
        return []

    def filenos(self) -> list[int]:
        return []

    def shutdown(self, *, graceful: bool = True) -> None: ...


@pytest.mark.slow
def test_callbacks_that_outlast_their_timeout_are_stopped_and_change_nothing(
    deployment: Deployment, tmp_path: Path
) -> None:
    # SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS=1: a try's success callback, a try's failure callback
    # that ignores its stop (killed with its group after the grace), and a DAG callback from a
    # callback request, each sleeping a minute. The runs end as their tasks did, on time.
    out = tmp_path / "slow.jsonl"
    deployment.env["SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS"] = "1"
    write(
        deployment,
        "slow_alerts",
        out,
        """
import time

def sleepy(name):
    def callback(context):
        record(name + "_started")(context)
        time.sleep(60)
        record(name + "_finished")(context)
    callback.__name__ = name
    return callback

def stubborn(context):
    record("stubborn_started")(context)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            time.sleep(60)
        except BaseException:
            record("stubborn_ignored_its_stop")(context)

with DAG("slow_alerts", schedule=None, start_date=datetime(2024, 1, 1),
         on_failure_callback=sleepy("dag_failure")) as dag:
    @task(on_success_callback=[sleepy("success"), record("after_success")])
    def ok():
        return 1

    @task(on_failure_callback=stubborn)
    def boom():
        raise ValueError("bad input 42")

    ok()
    boom()
""",
    )
    deployment.start()
    run = deployment.trigger("slow_alerts")
    done = deployment.finished(run, timeout=30)
    assert done.state is RunState.FAILED
    states = {t.task_id: t.state for t in deployment.runs.task_instances("slow_alerts", run.run_id)}
    assert states == {"ok": TaskState.SUCCESS, "boom": TaskState.FAILED}
    [boom_try] = deployment.runs.tries("slow_alerts", run.run_id, "boom")
    assert (boom_try.exit_reason, boom_try.error) == (
        ExitReason.TASK_ERROR,
        "ValueError: bad input 42",
    )

    def none_stored() -> bool:
        with deployment.db.read() as conn:
            return callbacks_store.pending(conn) == []

    wait_for(lambda: "dag_failure_started" in names(out), 20, "the DAG failure callback")
    wait_for(none_stored, 20, "the timed-out request's row to go")
    assert sorted(names(out)) == [
        "dag_failure_started",
        "stubborn_ignored_its_stop",
        "stubborn_started",
        "success_started",
    ]
    folder = deployment.settings.log_folder
    ok_log = log_path_for(folder, "slow_alerts", run.run_id, "ok", 1).read_text()
    assert (
        "on_success_callback[0] success of task 'ok' did not finish within 1s "
        "(SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS): stopped"
    ) in ok_log
    boom_log = log_path_for(folder, "slow_alerts", run.run_id, "boom", 1).read_text()
    assert (
        "the on_failure_callback of task 'boom' (try 1) did not finish within 1s "
        "(SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS): stopping them; the try's outcome (failed) stands"
    ) in boom_log
    dag_log = dag_callbacks_log_path(folder, "slow_alerts", run.run_id).read_text()
    assert (
        "on_failure_callback[0] dag_failure of DAG 'slow_alerts' did not finish within 1s"
        in dag_log
    )
    assert (
        f"on_failure_callback of DAG 'slow_alerts' for run {run.run_id} did not finish within 1s"
    ) in dag_log
    # Nothing moved: the run and its tasks are as their tries left them.
    assert deployment.runs.get("slow_alerts", run.run_id).state is RunState.FAILED
    assert deployment.runs.get("slow_alerts", run.run_id).end_date == done.end_date
