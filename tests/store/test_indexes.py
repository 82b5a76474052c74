"""The hot and listing queries are served by indexes, not table scans (SQLite's own plans)."""

from __future__ import annotations

import pytest

from slipstream.store.db import Database

QUERIES = {
    "queued runs of one DAG": (
        "SELECT * FROM runs WHERE state = 'queued' AND dag_id = 'd' ORDER BY id LIMIT 16"
    ),
    "a page of one DAG's runs": "SELECT * FROM runs WHERE dag_id = 'd' ORDER BY id DESC LIMIT 25",
    "a page of all runs by date": "SELECT * FROM runs ORDER BY logical_date DESC LIMIT 25",
    "one DAG's runs by date": (
        "SELECT * FROM runs WHERE dag_id = 'd' ORDER BY logical_date DESC LIMIT 25"
    ),
    "tasks of one run": "SELECT task_id, state FROM task_instances WHERE run_pk = 1",
    "tasks in a state": "SELECT * FROM task_instances WHERE state = 'scheduled'",
    "a try's history": "SELECT * FROM task_tries WHERE run_pk = 1 AND task_id = 't'",
    "upstream XComs": "SELECT * FROM xcoms WHERE run_pk = 1 AND task_id IN ('a', 'b')",
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_uses_an_index(sqlite_db: Database, name: str) -> None:
    with sqlite_db.read() as conn:
        plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {QUERIES[name]}")]
    text = " | ".join(plan)
    assert "USING" in text and "INDEX" in text, text
    assert "USE TEMP B-TREE" not in text, f"{name} sorts rows instead of reading an index: {text}"
