"""RunService on real databases: triggers refuse bad input and write nothing, run ids never
collide, idempotency keys return the first run."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slipstream.clock import FrozenClock
from slipstream.errors import DagNotFound, InvalidConf, InvalidInputError, RunAlreadyExists
from slipstream.services.runs import RunService
from slipstream.store import dags as dags_store
from slipstream.store.db import Database
from slipstream.wakeup import Hint, WakeupListener, WakeupSender
from tests.store.conftest import AddDag, dag_structure

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def runs(db: Database) -> RunService:
    return RunService(db, clock=FrozenClock(NOW))


def _count(runs: RunService, dag_id: str) -> int:
    return runs.list_runs(dag_id, limit=None)[1]


def test_a_thousand_triggers_in_one_instant_get_distinct_run_ids(
    runs: RunService, add_dag: AddDag
) -> None:
    add_dag("busy")
    ids = [runs.trigger("busy").run.run_id for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert ids[0] == f"manual__{NOW.isoformat()}"
    assert all(run_id.startswith(f"manual__{NOW.isoformat()}") for run_id in ids)
    assert _count(runs, "busy") == 1000


def test_an_idempotency_key_returns_the_first_run(runs: RunService, add_dag: AddDag) -> None:
    add_dag("etl")
    first = runs.trigger("etl", conf={"a": 1}, idempotency_key="req-1")
    again = runs.trigger("etl", conf={"a": 2}, idempotency_key="req-1")
    other = runs.trigger("etl", idempotency_key="req-2")
    assert first.created and not again.created and other.created
    assert again.run.run_id == first.run.run_id and again.run.conf == {"a": 1}
    assert _count(runs, "etl") == 2


def test_bad_triggers_name_the_problem_and_write_nothing(
    runs: RunService, db: Database, add_dag: AddDag
) -> None:
    structure = dag_structure("typed", [{"task_id": "only"}])
    structure["params"] = {"n": {"schema": {"type": "integer"}, "description": None}}
    with db.write() as conn:
        dags_store.upsert_parsed(conn, structure, "h", "src", paused_at_creation=False, now=NOW)
    cases: list[tuple[dict[str, object], type[Exception], str | None]] = [
        ({"conf": ["not", "an", "object"]}, InvalidInputError, "conf"),
        ({"conf": {"n": "seven"}}, InvalidConf, "n"),
        ({"conf": {}}, InvalidConf, "n"),  # required: no default
        (
            {"conf": {"n": 1}, "logical_date": datetime(2026, 1, 1)},  # no timezone
            InvalidInputError,
            "logical_date",
        ),
        ({"conf": {"n": 1}, "run_id": "  "}, InvalidInputError, "dag_run_id"),
    ]
    for kwargs, error, field in cases:
        with pytest.raises(error) as caught:
            runs.trigger("typed", **kwargs)  # type: ignore[arg-type]
        assert getattr(caught.value, "field", None) == field, kwargs
    with pytest.raises(DagNotFound):
        runs.trigger("missing")
    assert _count(runs, "typed") == 0
    runs.trigger("typed", conf={"n": 1}, run_id="mine")
    with pytest.raises(RunAlreadyExists):
        runs.trigger("typed", conf={"n": 1}, run_id="mine")
    assert _count(runs, "typed") == 1


def test_a_paused_dag_accepts_the_run_and_says_it_will_wait(
    runs: RunService, db: Database, add_dag: AddDag
) -> None:
    add_dag("sleepy")
    with db.write() as conn:
        dags_store.set_paused(conn, "sleepy", True)
    result = runs.trigger("sleepy")
    assert result.dag_is_paused and result.run.state.value == "queued"
    assert "paused" in result.message and "unpaused" in result.message


def test_only_a_trigger_of_an_unpaused_dag_wakes_the_scheduler(
    db: Database, add_dag: AddDag, tmp_path: Path
) -> None:
    socket_path = tmp_path / "scheduler.wake"
    listener = WakeupListener(socket_path)
    sender = WakeupSender(socket_path)
    try:
        runs = RunService(db, clock=FrozenClock(NOW), wakeup=sender)
        add_dag("live")
        add_dag("held")
        with db.write() as conn:
            dags_store.set_paused(conn, "held", True)
        assert runs.trigger("held").dag_is_paused
        runs.trigger("live")
        deadline = time.monotonic() + 5
        hints: list[Hint] = []
        while Hint.queued_run("live") not in hints and time.monotonic() < deadline:
            hints += listener.drain()
            time.sleep(0.01)
        # The unpause wakes the scheduler for the held run; the trigger itself need not.
        assert hints == [Hint.queued_run("live")]
    finally:
        sender.close()
        listener.close()
