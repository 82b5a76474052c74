"""TaskFinished's JSON codec, the outbox's payload: every field survives the round trip."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from slipstream.core.records import (
    OUTCOME_VERSION,
    ExitReason,
    TaskFinished,
    TaskKey,
    Wait,
    WakeAction,
)
from slipstream.core.states import TaskState

AT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def full() -> TaskFinished:
    """An outcome with every field away from its default."""
    return TaskFinished(
        key=TaskKey(41, "extract", 3, 7),
        state=TaskState.UP_FOR_RESCHEDULE,
        exit_reason=ExitReason.WAITING,
        at=AT,
        error="line one\nline 'two' \u00e9",
        exit_code=-9,
        xcoms=(("return_value", '{"a": [1, 2]}'), ("other", '"x"')),
        skip_downstream=("left", "right"),
        callbacks_done=True,
        map_length=12,
        wait=Wait(
            wake_at=AT + timedelta(seconds=30),
            action=WakeAction.RESUME,
            started_at=AT - timedelta(minutes=5),
            timeout_at=AT + timedelta(hours=1),
            on_timeout=TaskState.SKIPPED,
            pokes=4,
            next_method="execute_complete",
            next_kwargs='{"k": 1}',
            event="2026-03-01T12:30:00+00:00",
            reason="waiting for the file",
            deferred=True,
            lost=1,
        ),
        asset_extras=(("s3://bucket/key", '{"rows": 10}'),),
    )


def test_every_field_survives_a_round_trip_through_json_text() -> None:
    outcome = full()
    # Every field is set away from its default, so a field the codec forgets shows here.
    defaults = TaskFinished(TaskKey(0, "", 0), TaskState.SUCCESS, ExitReason.SUCCESS, AT)
    for field in dataclasses.fields(TaskFinished):
        if field.name not in ("at",):
            assert getattr(outcome, field.name) != getattr(defaults, field.name), field.name
    text = json.dumps(outcome.to_json())
    assert TaskFinished.from_json(json.loads(text)) == outcome


def test_a_plain_outcome_round_trips_with_its_defaults() -> None:
    plain = TaskFinished(TaskKey(1, "t", 1), TaskState.SUCCESS, ExitReason.SUCCESS, AT)
    assert TaskFinished.from_json(json.loads(json.dumps(plain.to_json()))) == plain
    assert plain.to_json()["v"] == OUTCOME_VERSION


def test_another_version_or_a_malformed_payload_is_refused_by_name() -> None:
    payload = full().to_json()
    with pytest.raises(ValueError, match="version 2 is not 1"):
        TaskFinished.from_json({**payload, "v": 2})
    broken = dict(payload)
    del broken["state"]
    with pytest.raises(ValueError, match=r"malformed.*state"):
        TaskFinished.from_json(broken)
    with pytest.raises(ValueError, match="malformed"):
        TaskFinished.from_json({**payload, "state": "no_such_state"})
