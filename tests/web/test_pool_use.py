"""web/pool_use.py: a pool's use in one line, the pools a DAG's tasks name, and what its
pool means for one task instance (waiting, paused, never fits, missing)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from slipstream.core.pools import Pool, PoolUsage
from slipstream.core.records import TaskInstance
from slipstream.core.states import TaskState
from slipstream.web.pool_use import one_line, pool_note, pool_url, pools_of_tasks

TI = TaskInstance(
    run_pk=1,
    dag_id="d",
    run_id="r",
    task_id="t",
    state=TaskState.SCHEDULED,
    try_number=0,
    max_tries=0,
    pool="etl",
    pool_slots=2,
)


def usage(slots: int, *, include_deferred: bool = False, **held: int) -> PoolUsage:
    return PoolUsage(Pool("etl", slots, include_deferred=include_deferred), **held)


def test_one_line_names_what_holds_the_slots_and_what_is_open() -> None:
    assert one_line(usage(128, queued=2, running=1)) == (
        "3 of 128 slots occupied · 1 running · 2 queued · 125 open"
    )
    assert one_line(usage(1)) == "0 of 1 slot occupied · 1 open"
    counted = usage(4, include_deferred=True, running=1, deferred=2)
    assert one_line(counted) == "3 of 4 slots occupied · 1 running · 2 deferred (counted) · 1 open"
    ignored = usage(4, running=1, deferred=2, scheduled=5)
    assert one_line(ignored) == (
        "1 of 4 slots occupied · 1 running · 2 deferred (not counted) · 3 open"
    )


@pytest.mark.parametrize(
    ("ti", "use", "expected"),
    [
        (TI, usage(4, running=3), "Waiting for a slot: this try needs 2 slots of pool 'etl',"),
        (TI, usage(4, running=2), None),  # it fits: the next pass queues it
        (TI, usage(0), "Waiting: pool 'etl' has 0 slots (paused on purpose)"),
        (TI, usage(1), "This task can never run in its pool: pool_slots=2 is more than the 1"),
        (replace(TI, state=TaskState.NONE), usage(1), "can never run in its pool"),
        (replace(TI, state=TaskState.NONE), usage(4, running=4), None),  # not ready yet
        (replace(TI, state=TaskState.RUNNING), usage(4, running=4), None),
        (TI, None, "Pool 'etl' does not exist. The scheduler fails a task whose pool is missing"),
        (replace(TI, state=TaskState.FAILED), None, "does not exist (any more): cleared,"),
        (replace(TI, state=TaskState.SUCCESS), usage(1), None),
    ],
)
def test_pool_note_says_what_the_pool_means_for_the_task_now(
    ti: TaskInstance, use: PoolUsage | None, expected: str | None
) -> None:
    note = pool_note(ti, use)
    if expected is None:
        assert note is None
    else:
        assert note is not None and expected in note, note


def test_pools_of_tasks_groups_tasks_by_pool_default_pool_first() -> None:
    tasks = [
        {"task_id": "b", "pool": "zeta", "pool_slots": 3},
        {"task_id": "a"},  # a version serialized before pools: default_pool, 1 slot
        {"task_id": "c", "pool": "alpha"},
        {"task_id": "d", "pool": "zeta", "pool_slots": 1},
        {"task_id": "e", "pool": "default_pool", "pool_slots": 2},
    ]
    assert pools_of_tasks(tasks) == {
        "default_pool": [("a", 1), ("e", 2)],
        "alpha": [("c", 1)],
        "zeta": [("b", 3), ("d", 1)],
    }
    assert pools_of_tasks([]) == {}


def test_pool_url_quotes_the_whole_name() -> None:
    assert pool_url("team/etl x") == "/admin/pools/team%2Fetl%20x"
    assert pool_url("p", "edit") == "/admin/pools/p/edit"
