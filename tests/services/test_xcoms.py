"""A try's reads beyond its workload, against a real database: XComs of earlier runs
(include_prior_dates), of another DAG, and the previous successful run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from slipstream.core.records import RunType, Workload
from slipstream.runner.runtime import RuntimeTaskInstance
from slipstream.services.xcom_reader_factory import XComReaderFactory
from slipstream.store import runs as runs_store
from slipstream.store import xcoms as xcom_store
from slipstream.store.db import Database
from slipstream.store.tables import runs
from tests.store.conftest import AddDag

DAY = datetime(2026, 2, 1, tzinfo=UTC)


def _run(db: Database, dag_id: str, version_id: int, day: int, pushes: dict[str, object]) -> int:
    logical = DAY + timedelta(days=day)
    with db.write() as conn:
        run = runs_store.insert_run(
            conn,
            dag_id=dag_id,
            run_id=f"scheduled__{logical.isoformat()}",
            run_type=RunType.SCHEDULED,
            logical_date=logical,
            data_interval=(logical, logical + timedelta(days=1)),
            conf={},
            version_id=version_id,
            now=logical,
        )
        for task_id, value in pushes.items():
            xcom_store.write(
                conn,
                run_pk=run.id,
                dag_id=dag_id,
                run_id=run.run_id,
                task_id=task_id,
                items=[("return_value", json.dumps(value))],
                now=logical,
            )
    return run.id


def _ti(db: Database, dag_id: str, run_pk: int, day: int, task_id: str) -> RuntimeTaskInstance:
    logical = DAY + timedelta(days=day)
    workload = Workload(
        run_pk=run_pk,
        dag_id=dag_id,
        run_id=f"scheduled__{logical.isoformat()}",
        task_id=task_id,
        try_number=1,
        max_tries=0,
        fileloc="/nowhere.py",
        version_hash="h",
        run_type=RunType.SCHEDULED,
        logical_date=logical,
        data_interval_start=logical,
        data_interval_end=logical + timedelta(days=1),
        conf={},
        log_path="/dev/null",
    )
    ti = RuntimeTaskInstance(workload, XComReaderFactory(db.url))
    opened.append(ti)
    return ti


opened: list[RuntimeTaskInstance] = []


@pytest.fixture(autouse=True)
def _close_readers() -> Iterator[None]:
    yield
    while opened:
        opened.pop().close()


def test_include_prior_dates_finds_the_newest_earlier_value(db: Database, add_dag: AddDag) -> None:
    plan = add_dag("etl", [{"task_id": "count"}, {"task_id": "report"}])
    _run(db, "etl", plan.version_id, 0, {"count": 10})
    _run(db, "etl", plan.version_id, 1, {"count": 11})
    today = _run(db, "etl", plan.version_id, 2, {})
    _run(db, "etl", plan.version_id, 3, {"count": 99})  # a later run must not be seen
    ti = _ti(db, "etl", today, 2, "report")
    assert ti.xcom_pull(task_ids="count") is None  # this run only
    assert ti.xcom_pull(task_ids="count", include_prior_dates=True) == 11
    assert ti.xcom_pull(task_ids=["count", "none"], include_prior_dates=True) == [11, None]
    assert ti.xcom_pull(task_ids="none", include_prior_dates=True, default="x") == "x"
    ti.xcom_push("return_value", 5)
    assert ti.xcom_pull(task_ids="report", include_prior_dates=True) == 5  # its own run first


def test_no_task_ids_means_this_task_then_any_task_of_the_run(
    db: Database, add_dag: AddDag
) -> None:
    plan = add_dag("etl", [{"task_id": "a"}, {"task_id": "b"}])
    run_pk = _run(db, "etl", plan.version_id, 0, {"a": 1})
    ti = _ti(db, "etl", run_pk, 0, "b")
    assert ti.xcom_pull() == 1  # Airflow 2: any task of the run
    ti.xcom_push("return_value", 2)
    assert ti.xcom_pull() == 2  # Airflow 3: this task's own


def test_another_dag_is_read_by_run_id_or_by_logical_date(db: Database, add_dag: AddDag) -> None:
    up = add_dag("upstream_dag", [{"task_id": "export"}])
    mine = add_dag("mine", [{"task_id": "load"}])
    _run(db, "upstream_dag", up.version_id, 0, {"export": "day0"})
    _run(db, "upstream_dag", up.version_id, 1, {"export": "day1"})
    run_pk = _run(db, "mine", mine.version_id, 1, {})
    ti = _ti(db, "mine", run_pk, 1, "load")
    assert ti.xcom_pull(task_ids="export", dag_id="upstream_dag") == "day1"  # same run_id
    assert ti.xcom_pull(task_ids="export", dag_id="nowhere") is None
    other = f"scheduled__{DAY.isoformat()}"
    assert ti.xcom_pull(task_ids="export", dag_id="upstream_dag", run_id=other) == "day0"
    later = _run(db, "mine", mine.version_id, 5, {})
    assert (
        _ti(db, "mine", later, 5, "load").xcom_pull(
            task_ids="export", dag_id="upstream_dag", include_prior_dates=True
        )
        == "day1"
    )


def test_previous_success_is_read_once_and_only_when_asked(db: Database, add_dag: AddDag) -> None:
    plan = add_dag("etl")
    first = _run(db, "etl", plan.version_id, 0, {})
    _run(db, "etl", plan.version_id, 1, {})  # queued, not successful
    with db.write() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.id == first)
            .values(state="success", start_date=DAY, end_date=DAY + timedelta(hours=1))
        )
    current = _run(db, "etl", plan.version_id, 2, {})
    ti = _ti(db, "etl", current, 2, "only")
    previous = ti.previous_success()
    assert previous is not None and previous.id == first
    assert previous.end_date == DAY + timedelta(hours=1)
    assert ti.previous_success() is previous
    assert _ti(db, "etl", first, 0, "only").previous_success() is None


def _push_instances(
    db: Database, run_pk: int, dag_id: str, task_id: str, values: list[object]
) -> None:
    with db.read() as conn:
        run = runs_store.get_run_by_pk(conn, run_pk)
    assert run is not None
    with db.write() as conn:
        for index in reversed(range(len(values))):
            xcom_store.write(
                conn,
                run_pk=run_pk,
                dag_id=dag_id,
                run_id=run.run_id,
                task_id=task_id,
                items=[("return_value", json.dumps(values[index]))],
                now=DAY,
                map_index=index,
            )


def test_include_prior_dates_reads_a_mapped_task_as_its_newest_run_s_list(
    db: Database, add_dag: AddDag
) -> None:
    plan = add_dag("etl", [{"task_id": "split"}, {"task_id": "report"}])
    older = _run(db, "etl", plan.version_id, 0, {})
    _push_instances(db, older, "etl", "split", ["a", "b", "c"])
    newer = _run(db, "etl", plan.version_id, 1, {})
    _push_instances(db, newer, "etl", "split", [{"n": 0}, {"n": 1}])
    today = _run(db, "etl", plan.version_id, 2, {})
    later = _run(db, "etl", plan.version_id, 3, {})
    _push_instances(db, later, "etl", "split", ["not yet"])

    ti = _ti(db, "etl", today, 2, "report")
    assert ti.xcom_pull(task_ids="split", include_prior_dates=True) == [{"n": 0}, {"n": 1}]
    assert ti.xcom_pull(task_ids=["split", "report"], include_prior_dates=True) == [
        [{"n": 0}, {"n": 1}],
        None,
    ]
    # The same shape as a pull within the run that pushed them.
    in_run = _ti(db, "etl", newer, 1, "report")
    assert in_run.xcom_pull(task_ids="split") == [{"n": 0}, {"n": 1}]
    # map_indexes honours include_prior_dates too: each index from the newest run that has it.
    assert ti.xcom_pull(task_ids="split", include_prior_dates=True, map_indexes=1) == {"n": 1}
    assert ti.xcom_pull(task_ids="split", include_prior_dates=True, map_indexes=[0, 2]) == [
        {"n": 0},
        "c",
    ]
    assert ti.xcom_pull(task_ids="split", map_indexes=1) is None  # this run only
    # Another run by its run_id, one index of it.
    other = f"scheduled__{DAY.isoformat()}"
    assert ti.xcom_pull(task_ids="split", run_id=other) == ["a", "b", "c"]
    assert ti.xcom_pull(task_ids="split", run_id=other, map_indexes=2) == "c"
