"""Callbacks of a try's outcome, run in the try's own process by run_try (in-process here), and
callback requests from the scheduler (runner/callbacks.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import EmptyOperator
from slipstream.authoring.taskflow import task
from slipstream.core.records import CallbackKind, CallbackRequest, ExitReason, TaskFinished
from slipstream.core.states import TaskState
from slipstream.errors import FailTask, SkipTask
from slipstream.runner.alerts import CallbackTimedOut
from slipstream.runner.callbacks import TryFailed, run_callback_request
from slipstream.runner.task_runner import TryTerminated, TryTimedOut, run_try
from tests.runner.support import make_workload

Seen = list[tuple[str, dict[str, Any]]]


def recorder(seen: Seen, name: str) -> Any:
    def callback(context: dict[str, Any]) -> None:
        seen.append((name, dict(context)))

    callback.__name__ = name
    return callback


def build(seen: Seen, **task_args: Any) -> DAG:
    with DAG(
        "d",
        schedule=None,
        start_date=datetime(2024, 1, 1),
        default_args={"on_execute_callback": recorder(seen, "execute")},
        on_success_callback=recorder(seen, "dag_success"),
        on_failure_callback=[recorder(seen, "dag_failure_1"), recorder(seen, "dag_failure_2")],
    ) as dag:
        hooks = {
            "on_success_callback": recorder(seen, "success"),
            "on_failure_callback": recorder(seen, "failure"),
            "on_retry_callback": recorder(seen, "retry"),
            "on_skipped_callback": recorder(seen, "skipped"),
            **task_args,
        }

        @task(**hooks)
        def ok() -> int:
            seen.append(("ran", {}))
            return 1

        @task(**hooks)
        def boom() -> None:
            raise ValueError("bad input 42")

        @task(**hooks)
        def skip_me() -> None:
            raise SkipTask("not today")

        @task(**hooks)
        def give_up() -> None:
            raise FailTask("hopeless")

        @task(**hooks)
        def stopped() -> None:
            raise TryTerminated("received SIGTERM")

        @task(**hooks)
        def timed_out() -> None:
            raise TryTimedOut("execution_timeout exceeded")

        ok()
        boom()
        skip_me()
        give_up()
        stopped()
        timed_out()
        EmptyOperator(task_id="z_last")
    return dag


def names(seen: Seen) -> list[str]:
    return [name for name, _ in seen]


def test_success_runs_execute_then_success_with_the_tries_context(tmp_path: Path) -> None:
    seen: Seen = []
    finished = run_try(make_workload(tmp_path / "f.py", "ok"), build(seen))
    assert finished.state is TaskState.SUCCESS and finished.callbacks_done
    assert names(seen) == ["execute", "ran", "success"]
    context = seen[-1][1]
    assert context["ti"].task_id == "ok" and context["ti"].try_number == 1
    assert context["run_id"] == "manual__1" and context["exception"] is None
    assert context["task"].task_id == "ok" and context["dag"].dag_id == "d"


@pytest.mark.parametrize(
    ("try_number", "max_tries", "infra_failures", "expected"),
    [
        (1, 1, 0, "retry"),  # one retry left
        (2, 1, 0, "failure"),  # the last try
        (2, 1, 1, "retry"),  # a try lost to infrastructure does not count against retries
        (1, 0, 0, "failure"),
    ],
)
def test_failure_picks_retry_or_failure_as_the_scheduler_will(
    tmp_path: Path, try_number: int, max_tries: int, infra_failures: int, expected: str
) -> None:
    seen: Seen = []
    workload = make_workload(
        tmp_path / "f.py",
        "boom",
        try_number=try_number,
        max_tries=max_tries,
        infra_failures=infra_failures,
    )
    finished = run_try(workload, build(seen))
    assert finished.state is TaskState.FAILED and finished.callbacks_done
    assert names(seen) == ["execute", expected]
    exception = seen[-1][1]["exception"]
    assert isinstance(exception, ValueError) and str(exception) == "bad input 42"


def test_fail_now_never_calls_the_retry_callback(tmp_path: Path) -> None:
    seen: Seen = []
    run_try(make_workload(tmp_path / "f.py", "give_up", max_tries=5), build(seen))
    assert names(seen) == ["execute", "failure"]
    assert isinstance(seen[-1][1]["exception"], FailTask)


def test_skip_raised_by_the_task_calls_on_skipped(tmp_path: Path) -> None:
    seen: Seen = []
    finished = run_try(make_workload(tmp_path / "f.py", "skip_me"), build(seen))
    assert finished.state is TaskState.SKIPPED
    assert names(seen) == ["execute", "skipped"]


def test_a_stopped_try_leaves_its_callbacks_to_the_scheduler(tmp_path: Path) -> None:
    seen: Seen = []
    finished = run_try(make_workload(tmp_path / "f.py", "stopped"), build(seen))
    assert finished.state is TaskState.FAILED and not finished.callbacks_done
    assert names(seen) == ["execute"]


def test_a_timed_out_try_runs_its_failure_callbacks_itself(tmp_path: Path) -> None:
    seen: Seen = []
    finished = run_try(make_workload(tmp_path / "f.py", "timed_out"), build(seen))
    assert finished.state is TaskState.FAILED and finished.callbacks_done
    assert names(seen) == ["execute", "failure"]
    assert isinstance(seen[-1][1]["exception"], TryTimedOut)


def test_a_raising_callback_is_logged_and_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: Seen = []

    def broken(context: dict[str, Any]) -> None:
        raise RuntimeError("alert service down")

    dag = build(seen, on_success_callback=[broken, recorder(seen, "after")])
    caplog.set_level("INFO")
    finished = run_try(make_workload(tmp_path / "f.py", "ok"), dag)
    assert finished.state is TaskState.SUCCESS and finished.exit_reason is ExitReason.SUCCESS
    # The list goes on after the one that raised.
    assert names(seen) == ["execute", "ran", "after"]
    failed = [r for r in caplog.records if "broken" in r.getMessage() and r.exc_info]
    assert failed and "alert service down" in str(failed[0].exc_info[1])  # type: ignore[index]


def test_a_raising_execute_callback_does_not_fail_the_task(tmp_path: Path) -> None:
    seen: Seen = []

    def broken(context: dict[str, Any]) -> None:
        raise RuntimeError("nope")

    finished = run_try(
        make_workload(tmp_path / "f.py", "ok"), build(seen, on_execute_callback=broken)
    )
    assert finished.state is TaskState.SUCCESS
    assert names(seen) == ["ran", "success"]


def _request(tmp_path: Path, kind: CallbackKind, task_id: str, **fields: Any) -> CallbackRequest:
    workload = make_workload(tmp_path / "f.py", task_id, try_number=2, max_tries=1)
    return CallbackRequest(1, kind, workload, str(tmp_path / "cb.log"), **fields)


def test_a_request_for_a_lost_try_calls_failure_with_the_tries_context(tmp_path: Path) -> None:
    seen: Seen = []
    request = _request(tmp_path, CallbackKind.TASK_FAILURE, "ok", error="killed by signal SIGKILL")
    run_callback_request(request, build(seen))
    assert names(seen) == ["failure"]
    context = seen[0][1]
    assert context["ti"].try_number == 2 and context["task"].task_id == "ok"
    assert isinstance(context["exception"], TryFailed)
    assert str(context["exception"]) == "killed by signal SIGKILL"


def test_a_request_for_a_run_end_calls_each_dag_callback_with_its_reason(tmp_path: Path) -> None:
    seen: Seen = []
    run_callback_request(
        _request(tmp_path, CallbackKind.DAG_FAILURE, "z_last", reason="task_failure"), build(seen)
    )
    run_callback_request(
        _request(tmp_path, CallbackKind.DAG_SUCCESS, "", reason="success"), build(seen)
    )
    assert names(seen) == ["dag_failure_1", "dag_failure_2", "dag_success"]
    assert [c["reason"] for _, c in seen] == ["task_failure", "task_failure", "success"]
    assert seen[0][1]["ti"].task_id == "z_last" and seen[0][1]["dag_run"].run_id == "manual__1"
    assert "ti" not in seen[2][1] and seen[2][1]["run_id"] == "manual__1"


def test_a_request_whose_dag_did_not_load_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_callback_request(
        _request(tmp_path, CallbackKind.TASK_RETRY, "ok"), ImportError("no module named x")
    )
    assert any("cannot run" in r.getMessage() for r in caplog.records)


def test_every_try_logs_that_slas_are_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import timedelta

    with DAG("d", schedule=None, sla_miss_callback=print) as dag:

        @task(sla=timedelta(minutes=5))
        def ok() -> int:
            return 1

        ok()
    caplog.clear()
    finished = run_try(make_workload(tmp_path / "f.py", "ok"), dag)
    assert finished.state is TaskState.SUCCESS
    said = [r.getMessage() for r in caplog.records if r.name == "slipstream.task"]
    assert any("sla of task 'ok' is accepted and ignored" in m for m in said)
    assert any("sla_miss_callback of DAG 'd' is accepted and ignored" in m for m in said)


# ----------------------------------------------------------------- the callback timeout
# Whoever runs the callbacks raises CallbackTimedOut in them once their time is up (a worker's
# signal, the inline executor's timer); here a callback raises it itself, at a known point.


def out_of_time(context: dict[str, Any]) -> None:
    raise CallbackTimedOut(2.5)


def test_a_timed_out_callback_is_named_and_the_ones_after_it_are_not_called(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: Seen = []
    guarded: list[TaskFinished] = []
    names_seen: list[str] = []

    @contextlib.contextmanager
    def guard(outcome: TaskFinished, callbacks: str) -> Iterator[None]:
        guarded.append(outcome)
        names_seen.append(callbacks)
        yield

    dag = build(
        seen, on_success_callback=[recorder(seen, "first"), out_of_time, recorder(seen, "after")]
    )
    caplog.set_level("INFO")
    finished = run_try(make_workload(tmp_path / "f.py", "ok"), dag, callback_guard=guard)
    # The outcome stands and counts its callbacks as run; the guard saw it before they ran.
    assert finished.state is TaskState.SUCCESS and finished.callbacks_done
    assert names(seen) == ["execute", "ran", "first"]
    [outcome] = guarded
    assert names_seen == ["on_success_callback"]
    assert (outcome.state, outcome.callbacks_done, outcome.xcoms) == (
        TaskState.SUCCESS,
        True,
        finished.xcoms,
    )
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "on_success_callback[1] out_of_time of task 'ok' did not finish within 2.5s "
        "(SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS): stopped; the callbacks after it are not "
        "called, and nothing else changes"
    ) in messages


def test_the_guard_is_skipped_when_the_outcome_has_nothing_to_call(tmp_path: Path) -> None:
    guarded: list[TaskFinished] = []
    names_seen: list[str] = []

    @contextlib.contextmanager
    def guard(outcome: TaskFinished, callbacks: str) -> Iterator[None]:
        guarded.append(outcome)
        names_seen.append(callbacks)
        yield

    seen: Seen = []
    dag = build(seen, on_success_callback=None, on_failure_callback=None)
    for task_id in ("ok", "boom"):
        run_try(make_workload(tmp_path / "f.py", task_id), dag, callback_guard=guard)
    assert guarded == []  # a try without callbacks tells nobody (no frame on the hot path)
    run_try(make_workload(tmp_path / "f.py", "skip_me"), dag, callback_guard=guard)
    assert [o.state for o in guarded] == [TaskState.SKIPPED]
    assert names_seen == ["on_skipped_callback"]


def test_a_timed_out_request_stops_its_callbacks_and_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: Seen = []
    dag = build(seen)
    dag.on_failure_callback = [
        recorder(seen, "dag_first"),
        out_of_time,
        recorder(seen, "dag_after"),
    ]
    caplog.set_level("INFO")
    run_callback_request(
        _request(tmp_path, CallbackKind.DAG_FAILURE, "", reason="task_failure"), dag
    )
    assert names(seen) == ["dag_first"]
    assert any(
        "on_failure_callback[1] out_of_time of DAG 'd' did not finish within 2.5s" in r.getMessage()
        for r in caplog.records
    )
