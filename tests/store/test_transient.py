"""store.db.retry_transient against a real PostgreSQL deadlock: the victim's work is done
again and succeeds; errors that are not transient pass straight through."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from slipstream.store.db import Database, is_transient, retry_transient


@pytest.mark.postgres
def test_two_writers_locking_in_opposite_orders_both_finish(pg_db: Database) -> None:
    with pg_db.write() as conn:
        conn.execute(text("CREATE TABLE pair (id integer PRIMARY KEY, v integer NOT NULL)"))
        conn.execute(text("INSERT INTO pair VALUES (1, 0), (2, 0)"))
    both_hold_one = threading.Barrier(2, timeout=30)
    attempts = {"a": 0, "b": 0}
    victims: list[bool] = []

    def writer(name: str, first: int, second: int) -> None:
        attempts[name] += 1
        with pg_db.write() as conn:
            conn.execute(text("UPDATE pair SET v = v + 1 WHERE id = :i"), {"i": first})
            if attempts[name] == 1:
                both_hold_one.wait()  # each now holds one row and asks for the other's
            try:
                conn.execute(text("UPDATE pair SET v = v + 1 WHERE id = :i"), {"i": second})
            except DBAPIError as exc:
                victims.append(is_transient(exc))
                raise

    a = threading.Thread(target=retry_transient(writer), args=("a", 1, 2))
    a.start()
    retry_transient(writer)("b", 2, 1)
    a.join(60)
    # PostgreSQL broke the deadlock by aborting a writer, with an error retry_transient knows
    # as transient. One CI run (2026-12-07, loaded machine) saw two aborts in one test, so the
    # count is not pinned to one: what must hold is that every abort was transient and each
    # one's work was done again, once per abort, until both writers finished.
    assert victims and all(victims)
    assert sum(attempts.values()) == 2 + len(victims)
    with pg_db.read() as conn:
        assert conn.execute(text("SELECT v FROM pair ORDER BY id")).scalars().all() == [2, 2]


def test_other_errors_are_not_retried(db: Database) -> None:
    calls = 0

    @retry_transient
    def duplicate() -> None:
        nonlocal calls
        calls += 1
        with db.write() as conn:
            conn.execute(text("CREATE TABLE one (id integer PRIMARY KEY)"))
            conn.execute(text("INSERT INTO one VALUES (1), (1)"))

    with pytest.raises(IntegrityError) as raised:
        duplicate()
    assert calls == 1
    assert not is_transient(raised.value)
