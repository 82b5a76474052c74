"""runner.source_fetch: a DAG version's text read in a forked child, on real SQLite and
PostgreSQL, through the recipe a worker is given (services.dag_source_reader_factory)."""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from slipstream.runner.dag_sources import DagSourceReader, DagSourceUnavailable
from slipstream.runner.source_fetch import fetch_source
from slipstream.services.dag_source_reader_factory import DagSourceReaderFactory
from slipstream.store import dags as dags_store
from slipstream.store.db import Database

NOW = datetime(2026, 1, 2, tzinfo=UTC)
TEXT = "from slipstream import DAG\nDAG('d', schedule=None)  # caf\u00e9\n"


def store_version(db: Database, source: str | None) -> int:
    structure = {"dag_id": "d", "fileloc": "/dags/d.py", "tasks": []}
    with db.write() as conn:
        record = dags_store.upsert_parsed(
            conn,
            structure,
            "hash-text" if source else "hash-none",
            source,
            paused_at_creation=False,
            now=NOW,
        )
    assert record.version_id is not None
    return record.version_id


def children() -> set[int]:
    """This process's children, zombies included (Linux /proc)."""
    found: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as file:
            found.update(int(pid) for pid in file.read().split())
    return found


@pytest.fixture(autouse=True)
def every_child_is_reaped() -> Iterator[None]:
    before = children()
    yield
    assert children() <= before, "a reading child was left behind"


def test_a_version_s_text_is_read_in_a_child(db: Database) -> None:
    version_id = store_version(db, TEXT)
    empty = store_version(db, None)
    # The recipe crosses to the worker pickled, and keeps the URL out of its repr.
    factory = pickle.loads(pickle.dumps(DagSourceReaderFactory(db.url)))
    assert db.url not in repr(factory)
    assert fetch_source(factory, version_id, timeout=30, close_fds=[]) == TEXT
    assert fetch_source(factory, empty, timeout=30, close_fds=[]) is None
    assert fetch_source(factory, version_id + 1000, timeout=30, close_fds=[]) is None


def test_an_unreachable_database_is_an_error_naming_the_cause() -> None:
    factory = DagSourceReaderFactory("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/nowhere")
    assert "s3cret" not in repr(factory)
    with pytest.raises(DagSourceUnavailable) as raised:
        fetch_source(factory, 7, timeout=30, close_fds=[])
    message = str(raised.value)
    assert message.startswith(
        "could not read version 7's text from the metadata database: DatabaseUnavailable: "
        "database: cannot connect to postgresql+psycopg://postgres:***@127.0.0.1:1/nowhere"
    ), message
    assert "Connection refused" in message and "s3cret" not in message


class _Stuck:
    def source(self, version_id: int) -> str | None:
        time.sleep(60)
        return None

    def close(self) -> None:
        pass


def _stuck() -> DagSourceReader:
    return _Stuck()


def test_a_read_that_takes_too_long_is_abandoned_and_its_child_reaped() -> None:
    started = time.monotonic()
    with pytest.raises(DagSourceUnavailable) as raised:
        fetch_source(_stuck, 9, timeout=0.5, close_fds=[])
    assert time.monotonic() - started < 10
    assert str(raised.value) == (
        "reading version 9's text from the metadata database took longer than 0.5s "
        "(SLIPSTREAM_DAG_IMPORT_TIMEOUT)"
    )


def _dies() -> DagSourceReader:
    os._exit(3)


def test_a_child_that_dies_without_answering_is_an_error() -> None:
    with pytest.raises(DagSourceUnavailable, match="ended without an answer"):
        fetch_source(_dies, 9, timeout=30, close_fds=[])
