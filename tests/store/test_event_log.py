"""The audit log's store on SQLite and PostgreSQL: an entry is kept exactly when the
transaction it was written in commits, a secret key in `extra` is refused, and the filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slipstream.core.event_log import EventFilter
from slipstream.store import event_log
from slipstream.store.db import Database

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_an_entry_lives_and_dies_with_its_transaction(db: Database) -> None:
    with db.write() as conn:
        event_log.record_event(conn, "kept", NOW, owner="ann", dag_id="d", extra={"n": 1})
    with pytest.raises(RuntimeError), db.write() as conn:
        event_log.record_event(conn, "rolled_back", NOW, owner="ann")
        raise RuntimeError("the action failed")
    with db.read() as conn:
        found, total = event_log.list_events(conn, EventFilter())
    assert total == 1
    assert (found[0].event, found[0].owner, found[0].extra) == ("kept", "ann", '{"n": 1}')


@pytest.mark.parametrize("key", ["password", "Token", "secret"])
def test_a_secret_is_never_stored(db: Database, key: str) -> None:
    with pytest.raises(ValueError, match="secrets"), db.write() as conn:
        event_log.record_event(conn, "user_change", NOW, extra={key: "x"})
    with db.read() as conn:
        assert event_log.list_events(conn, EventFilter())[1] == 0


def test_filters(db: Database) -> None:
    with db.write() as conn:
        for i, (event, dag_id) in enumerate([("trigger", "a"), ("paused", "a"), ("login", None)]):
            event_log.record_event(conn, event, NOW + timedelta(minutes=i), dag_id=dag_id)
    with db.read() as conn:

        def events(**where: object) -> list[str]:
            found, _ = event_log.list_events(conn, EventFilter(**where))  # type: ignore[arg-type]
            return [e.event for e in found]

        assert events(dag_id="a") == ["trigger", "paused"]
        assert events(included_events=["login", "paused"]) == ["paused", "login"]
        assert events(included_events=[]) == []
        assert events(excluded_events=["trigger"]) == ["paused", "login"]
        assert events(after=NOW) == ["paused", "login"]
        assert events(before=NOW + timedelta(minutes=1)) == ["trigger"]
        found, total = event_log.list_events(
            conn, EventFilter(), limit=1, offset=1, order_by="when", descending=True
        )
        assert ([e.event for e in found], total) == (["paused"], 3)
