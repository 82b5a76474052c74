"""The versioned JSON codec of Workload and CallbackRequest (messages of the Celery executor):
every field survives a round trip through JSON text, and a message of another version or
shape is refused by name."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from slipstream.core.records import (
    CallbackKind,
    CallbackRequest,
    RunType,
    Wait,
    WakeAction,
    Workload,
)
from slipstream.core.states import RunState, TaskState

T0 = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def full_workload() -> Workload:
    """A workload with no field at its default, so a field the codec drops shows."""
    return Workload(
        run_pk=41,
        dag_id="etl",
        run_id="manual__2026-03-01",
        task_id="load",
        try_number=3,
        max_tries=5,
        fileloc="/dags/etl.py",
        version_hash="abc123",
        run_type=RunType.ASSET_TRIGGERED,
        logical_date=T0,
        data_interval_start=T0 - timedelta(days=1),
        data_interval_end=T0,
        conf={"a": [1, 2, {"b": None}], "ünï": "cödé"},
        log_path="/logs/etl/load/3.log",
        execution_timeout=12.5,
        queue="gpu",
        pool="small",
        pool_slots=2,
        upstream_xcoms={"extract": {"return_value": '{"rows": 3}', "other": "1"}},
        source="from slipstream import DAG\n",
        infra_failures=1,
        map_index=7,
        map_length_limit=100,
        same_index_upstream=("extract", "transform"),
        wait=Wait(
            wake_at=T0 + timedelta(minutes=1),
            action=WakeAction.RESUME,
            started_at=T0,
            timeout_at=T0 + timedelta(hours=1),
            on_timeout=TaskState.UP_FOR_RETRY,
            pokes=4,
            next_method="execute_complete",
            next_kwargs='{"x": 1}',
            event="2026-03-01T12:31:15+00:00",
            reason="waiting for a file",
            deferred=True,
            lost=1,
        ),
        sensor_started_at=T0 - timedelta(minutes=5),
        run_queued_at=T0 - timedelta(seconds=3),
        run_start_date=T0 - timedelta(seconds=2),
        run_state=RunState.FAILED,
        run_end_date=T0 + timedelta(seconds=9),
        version_id=12,
        source_sha256="f" * 64,
        source_origin="version 12's text from the database",
    )


def through_json(data: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(json.dumps(data))
    return loaded


def test_every_workload_field_is_carried() -> None:
    workload = full_workload()
    defaults = Workload(
        run_pk=0, dag_id="", run_id="", task_id="", try_number=0, max_tries=0, fileloc="",
        version_hash="", run_type=RunType.MANUAL, logical_date=None, data_interval_start=None,
        data_interval_end=None, conf={}, log_path="",
    )  # fmt: skip
    for f in dataclasses.fields(Workload):
        assert getattr(workload, f.name) != getattr(defaults, f.name), f.name
    encoded = workload.to_json()
    assert set(encoded) == {f.name for f in dataclasses.fields(Workload)} | {"v"}
    assert Workload.from_json(through_json(encoded)) == workload


def test_a_minimal_workload_round_trips() -> None:
    workload = Workload(
        run_pk=1, dag_id="d", run_id="r", task_id="t", try_number=1, max_tries=1, fileloc="f",
        version_hash="h", run_type=RunType.SCHEDULED, logical_date=None,
        data_interval_start=None, data_interval_end=None, conf={}, log_path="l",
    )  # fmt: skip
    assert Workload.from_json(through_json(workload.to_json())) == workload


def test_every_callback_request_field_is_carried() -> None:
    request = CallbackRequest(
        id=9,
        kind=CallbackKind.DAG_FAILURE,
        workload=full_workload(),
        log_path="/logs/callbacks/9.log",
        error="boom",
        reason="task_failure",
    )
    encoded = request.to_json()
    assert set(encoded) == {f.name for f in dataclasses.fields(CallbackRequest)} | {"v"}
    assert CallbackRequest.from_json(through_json(encoded)) == request


def test_another_version_is_refused_by_name() -> None:
    encoded = full_workload().to_json()
    encoded["v"] = 2
    with pytest.raises(ValueError, match="version 2 is not 1"):
        Workload.from_json(encoded)
    with pytest.raises(ValueError, match="version None"):
        Workload.from_json({})


@pytest.mark.parametrize(
    ("field", "value"),
    [("run_pk", "x"), ("run_type", "nightly"), ("conf", [1]), ("logical_date", 5)],
)
def test_a_malformed_workload_names_the_problem(field: str, value: object) -> None:
    encoded = full_workload().to_json()
    encoded[field] = value
    with pytest.raises(ValueError, match="workload message is malformed"):
        Workload.from_json(encoded)


def test_a_missing_field_is_malformed() -> None:
    encoded = full_workload().to_json()
    del encoded["queue"]
    with pytest.raises(ValueError, match="queue"):
        Workload.from_json(encoded)


def test_a_malformed_callback_request_is_refused() -> None:
    encoded = CallbackRequest(1, CallbackKind.TASK_RETRY, full_workload(), "l").to_json()
    encoded["kind"] = "on_party_callback"
    with pytest.raises(ValueError, match="callback request message is malformed"):
        CallbackRequest.from_json(encoded)
