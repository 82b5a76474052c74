"""store.xcoms on real SQLite and PostgreSQL: JSON text in, the same text out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import Run, RunType
from slipstream.store import runs as runs_store
from slipstream.store import xcoms as store
from slipstream.store.db import Database
from slipstream.store.tables import xcoms as xcoms_table

AddDag = Callable[..., DagPlan]  # the add_dag fixture in conftest.py

NOW = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def runs(db: Database, add_dag: AddDag) -> tuple[Run, Run]:
    plan = add_dag("etl", [{"task_id": "a"}, {"task_id": "b"}, {"task_id": "c"}])
    made = []
    with db.write() as conn:
        for run_id in ("r1", "r2"):
            made.append(
                runs_store.insert_run(
                    conn,
                    dag_id="etl",
                    run_id=run_id,
                    run_type=RunType.MANUAL,
                    logical_date=NOW,
                    data_interval=None,
                    conf={},
                    version_id=plan.version_id,
                    now=NOW,
                )
            )
    return made[0], made[1]


def push(db: Database, run: Run, task_id: str, *items: tuple[str, str]) -> None:
    with db.write() as conn:
        store.write(
            conn,
            run_pk=run.id,
            dag_id=run.dag_id,
            run_id=run.run_id,
            task_id=task_id,
            items=items,
            now=NOW,
        )


def test_values_come_back_as_the_text_written(db: Database, runs: tuple[Run, Run]) -> None:
    run, _ = runs
    text = '{"rows": [1, 2.5, null], "name": "caf\\u00e9 \\ud83d\\ude00"}'
    push(db, run, "a", ("return_value", text), ("count", "3"))
    with db.read() as conn:
        assert store.for_tasks(conn, run.id, ["a"]) == {"a": {"return_value": text, "count": "3"}}
        row = conn.execute(select(xcoms_table).where(xcoms_table.c.key == "count")).one()
    assert (row.dag_id, row.run_id, row.timestamp) == ("etl", "r1", NOW)


def test_write_replaces_the_keys_given_and_keeps_the_rest(
    db: Database, runs: tuple[Run, Run]
) -> None:
    run, _ = runs
    push(db, run, "a", ("return_value", '"first try"'), ("kept", "1"))
    push(db, run, "a", ("return_value", '"second try"'), ("new", "2"))
    with db.read() as conn:
        assert store.for_tasks(conn, run.id, ["a"]) == {
            "a": {"return_value": '"second try"', "kept": "1", "new": "2"}
        }


def test_a_key_repeated_in_one_write_keeps_its_last_value(
    db: Database, runs: tuple[Run, Run]
) -> None:
    run, _ = runs
    push(db, run, "a", ("k", "1"), ("k", "2"))
    with db.read() as conn:
        assert store.for_tasks(conn, run.id, ["a"]) == {"a": {"k": "2"}}


def test_writing_nothing_changes_nothing(db: Database, runs: tuple[Run, Run]) -> None:
    run, _ = runs
    push(db, run, "a", ("k", "1"))
    push(db, run, "a")
    with db.read() as conn:
        assert store.for_tasks(conn, run.id, ["a"]) == {"a": {"k": "1"}}


def test_for_tasks_reads_only_the_tasks_and_run_asked_for(
    db: Database, runs: tuple[Run, Run]
) -> None:
    first, second = runs
    push(db, first, "a", ("return_value", "1"))
    push(db, first, "b", ("return_value", "2"), ("extra", "x"))
    push(db, first, "c", ("return_value", "3"))
    push(db, second, "a", ("return_value", "99"))
    with db.read() as conn:
        assert store.for_tasks(conn, first.id, ["a", "b", "missing"]) == {
            "a": {"return_value": "1"},
            "b": {"return_value": "2", "extra": "x"},
        }
        assert store.for_tasks(conn, second.id, ["a", "b"]) == {"a": {"return_value": "99"}}
        assert store.for_tasks(conn, first.id, []) == {}


def test_pull_reads_one_key_from_several_tasks(db: Database, runs: tuple[Run, Run]) -> None:
    run, other = runs
    push(db, run, "a", ("return_value", "1"), ("other", "o"))
    push(db, run, "b", ("other", "o2"))
    push(db, other, "b", ("return_value", "nope"))
    with db.read() as conn:
        assert store.pull(conn, run.id, ["a", "b"], "return_value") == {"a": "1"}
        assert store.pull(conn, run.id, ["a", "b"], "other") == {"a": "o", "b": "o2"}
        assert store.pull(conn, run.id, ["c"], "return_value") == {}


def test_clear_forgets_some_tasks(db: Database, runs: tuple[Run, Run]) -> None:
    run, other = runs
    push(db, run, "a", ("k", "1"))
    push(db, run, "b", ("k", "2"))
    push(db, other, "a", ("k", "3"))
    with db.write() as conn:
        store.clear(conn, run.id, ["a"])
        store.clear(conn, run.id, [])
    with db.read() as conn:
        assert store.for_tasks(conn, run.id, ["a", "b"]) == {"b": {"k": "2"}}
        assert store.for_tasks(conn, other.id, ["a"]) == {"a": {"k": "3"}}


def test_a_mapped_task_s_xcoms_read_as_the_list_of_its_indexes(
    db: Database, runs: tuple[Run, Run]
) -> None:
    run = runs[0]
    with db.write() as conn:
        for index, text in ((2, '"c"'), (0, '"a"')):
            store.write(
                conn,
                run_pk=run.id,
                dag_id="etl",
                run_id="r1",
                task_id="a",
                items=[("return_value", text)],
                now=NOW,
                map_index=index,
            )
        store.write(
            conn,
            run_pk=run.id,
            dag_id="etl",
            run_id="r1",
            task_id="b",
            items=[("return_value", "{}")],
            now=NOW,
        )
    with db.read() as conn:
        assert store.for_tasks(conn, run.id, ["a", "b"]) == {
            "a": {"return_value": '["a","c"]'},
            "b": {"return_value": "{}"},
        }
        assert store.pull(conn, run.id, ["a", "b"], "return_value") == {
            "a": '["a","c"]',
            "b": "{}",
        }
        assert store.pull(conn, run.id, ["a"], "return_value", map_index=2) == {"a": '"c"'}
        assert store.pushed_count(conn, run.id, "a", "return_value") == 2
        assert store.pushed_count(conn, run.id, "b", "return_value") == 0


def test_for_instances_reads_the_xcoms_of_the_instances_asked_for(
    db: Database, runs: tuple[Run, Run]
) -> None:
    run, other = runs
    with db.write() as conn:
        for target, task_id, index, items in (
            (run, "a", 0, [("return_value", "1"), ("extra", "10")]),
            (run, "a", 1, [("return_value", "2")]),
            (run, "b", 1, [("return_value", "20")]),
            (run, "b", 0, [("return_value", "-1")]),
            (other, "a", 0, [("return_value", "99")]),
        ):
            store.write(
                conn,
                run_pk=target.id,
                dag_id="etl",
                run_id=target.run_id,
                task_id=task_id,
                items=items,
                now=NOW,
                map_index=index,
            )
    with db.read() as conn:
        # (a, 1) and (b, 0) are asked for by task and by index, but not as pairs: left out.
        found = store.for_instances(conn, run.id, [("a", 0), ("b", 1), ("c", 0)])
        assert store.for_instances(conn, run.id, []) == {}
    assert found == {
        ("a", 0): {"return_value": "1", "extra": "10"},
        ("b", 1): {"return_value": "20"},
    }


def test_recorded_lengths_are_replaced_and_cleared(db: Database, runs: tuple[Run, Run]) -> None:
    run = runs[0]
    with db.write() as conn:
        store.record_length(conn, run.id, "a", -1, 3)
        store.record_length(conn, run.id, "a", -1, 5)
        assert store.recorded_lengths(conn, run.id, ["a", "b"]) == {"a": 5}
        store.clear(conn, run.id, ["a"])
        assert store.recorded_lengths(conn, run.id, ["a"]) == {}


def test_any_key_reads_each_task_s_newest_push(db: Database, runs: tuple[Run, Run]) -> None:
    # Airflow 1.10/2's xcom_pull(key=None): no key filter, the newest XCom of each task.
    run, other = runs
    push(db, run, "a", ("custom", '"pushed"'), ("return_value", '"returned"'))
    push(db, run, "b", ("only", '"by hand"'))
    later = NOW.replace(minute=5)
    with db.write() as conn:
        store.write(
            conn,
            run_pk=run.id,
            dag_id="etl",
            run_id="r1",
            task_id="c",
            items=(("zz_old", "1"),),
            now=NOW,
        )
        store.write(
            conn,
            run_pk=run.id,
            dag_id="etl",
            run_id="r1",
            task_id="c",
            items=(("aa_new", "2"),),
            now=later,
        )
    push(db, other, "b", ("elsewhere", '"other run"'))
    with db.read() as conn:
        # One try's pushes share a time: its return value counts as the last.
        assert store.pull(conn, run.id, ["a", "b", "c", "gone"], None) == {
            "a": '"returned"',
            "b": '"by hand"',
            "c": "2",
        }


def _run_on(db: Database, version_id: int, run_id: str, day: int) -> Run:
    with db.write() as conn:
        return runs_store.insert_run(
            conn,
            dag_id="etl",
            run_id=run_id,
            run_type=RunType.SCHEDULED,
            logical_date=NOW.replace(day=day),
            data_interval=None,
            conf={},
            version_id=version_id,
            now=NOW,
        )


def _push_mapped(db: Database, run: Run, task_id: str, values: dict[int, str], minute: int) -> None:
    # Each index at its own moment, the highest index first: the newest row of the run is
    # not its first index, and rows come back in no map-index order.
    with db.write() as conn:
        for offset, (index, text) in enumerate(sorted(values.items(), reverse=True)):
            store.write(
                conn,
                run_pk=run.id,
                dag_id=run.dag_id,
                run_id=run.run_id,
                task_id=task_id,
                items=[("return_value", text)],
                now=NOW.replace(minute=minute, second=offset),
                map_index=index,
            )


def test_across_runs_a_mapped_task_reads_as_the_list_of_its_newest_run(
    db: Database, add_dag: AddDag
) -> None:
    # Airflow's include_prior_dates on a mapped task: the newest run's instances' values, in
    # map-index order, never a mix of runs nor one instance's value alone.
    plan = add_dag("etl", [{"task_id": "m"}, {"task_id": "u"}])
    first = _run_on(db, plan.version_id, "first", 2)
    second = _run_on(db, plan.version_id, "second", 3)
    third = _run_on(db, plan.version_id, "third", 4)
    _push_mapped(db, first, "m", {0: '"a0"', 1: '"a1"', 2: '"a2"'}, minute=50)
    _push_mapped(db, second, "m", {0: '"b0"', 1: '"b1"'}, minute=10)
    push(db, second, "u", ("return_value", '"u2"'))
    _push_mapped(db, third, "m", {0: '"later"'}, minute=0)

    def across(task_ids: list[str] | None, **scope: Any) -> dict[str, str]:
        with db.read() as conn:
            return store.pull_across_runs(
                conn, dag_id="etl", key="return_value", task_ids=task_ids, **scope
            )

    up_to_second = NOW.replace(day=3)
    assert across(task_ids=["m", "u"], logical_date_at_most=up_to_second) == {
        "m": '["b0","b1"]',
        "u": '"u2"',
    }
    assert across(task_ids=["m"], logical_date_at_most=NOW.replace(day=2)) == {
        "m": '["a0","a1","a2"]'
    }
    # One run by its run_id, as a pull from another DAG's run reads it; and the same text a
    # pull within that run gives.
    assert across(task_ids=["m"], run_id="first") == {"m": '["a0","a1","a2"]'}
    with db.read() as conn:
        assert store.pull(conn, first.id, ["m"], "return_value") == {"m": '["a0","a1","a2"]'}
    # One instance by its map index: the newest run that has that index.
    assert across(task_ids=["m"], logical_date_at_most=up_to_second, map_index=1) == {"m": '"b1"'}
    assert across(task_ids=["m"], logical_date_at_most=up_to_second, map_index=2) == {"m": '"a2"'}
    assert across(task_ids=["u"], logical_date_at_most=up_to_second, map_index=-1) == {"u": '"u2"'}
    # No task_ids: the newest value of any task, a mapped task's list whole.
    assert across(task_ids=None, logical_date_at_most=NOW.replace(day=2)) == {
        "m": '["a0","a1","a2"]'
    }
    assert across(task_ids=None, logical_date_at_most=NOW.replace(day=4)) == {"m": '["later"]'}
