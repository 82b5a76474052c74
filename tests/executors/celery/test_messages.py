"""The worker's reading of Celery messages: a body of another version, or a malformed one, is
refused by name (the task fails and its message is dropped, never half run)."""

from __future__ import annotations

import pytest

from slipstream.core.records import CallbackKind, CallbackRequest, TaskKey
from slipstream.executors.celery.executor import run_callbacks_body, run_try_body
from slipstream.executors.celery.worker import keys_of, request_of, workload_of
from tests.core.test_workload_codec import full_workload


def test_a_message_body_round_trips() -> None:
    workload = full_workload()
    assert workload_of(run_try_body(workload)) == workload
    request = CallbackRequest(3, CallbackKind.TASK_RETRY, workload, "/l")
    assert request_of(run_callbacks_body(request)) == request


@pytest.mark.parametrize("body", [{"v": 2, "workload": {}}, [], "x", None])
def test_another_version_is_refused_by_name(body: object) -> None:
    with pytest.raises(ValueError, match=r"slipstream.run_try message version .* is not 1"):
        workload_of(body)


def test_a_stop_request_names_its_tries() -> None:
    assert keys_of([[1, "a", 2, -1], [3, "b", 1, 4]]) == [TaskKey(1, "a", 2), TaskKey(3, "b", 1, 4)]
    with pytest.raises(ValueError, match="must be a list"):
        keys_of("1,a")
