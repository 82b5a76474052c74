"""How the UI tells a pool's use: its figures in one line, the pools a DAG's tasks name (with
each task's pool_slots), and what its pool means for one task instance now: waiting for a
slot, a pool of 0 slots holding it, a try that could never fit, or a pool that does not
exist (which the scheduler fails the task for, saying why)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from slipstream.core.admission import never_fits
from slipstream.core.pools import DEFAULT_POOL, PoolUsage
from slipstream.core.records import TaskInstance
from slipstream.core.states import TaskState

POOLS_PATH = "/admin/pools"

# The states in which a task instance may still ask its pool for a slot.
_WILL_ASK = frozenset(
    {
        TaskState.NONE,
        TaskState.SCHEDULED,
        TaskState.UP_FOR_RETRY,
        TaskState.UP_FOR_RESCHEDULE,
    }
)


def pool_url(name: str, action: str = "") -> str:
    """The pool's page on Admin -> Pools (`action`: one of its forms' suffixes)."""
    return f"{POOLS_PATH}/{quote(name, safe='')}" + (f"/{action}" if action else "")


def slots_word(count: int) -> str:
    return f"{count} slot{'s' if count != 1 else ''}"


def figures(usage: PoolUsage) -> list[str]:
    """The pool's use as the parts of one line: "3 of 128 slots occupied", then what holds
    them and what is left ("1 running", "2 queued", "1 deferred", "123 open")."""
    pool = usage.pool
    parts = [f"{usage.occupied} of {slots_word(pool.slots)} occupied"]
    if usage.running:
        parts.append(f"{usage.running} running")
    if usage.queued:
        parts.append(f"{usage.queued} queued")
    if usage.deferred:
        # A deferred task holds a slot only in a pool that counts them (include_deferred).
        counted = "counted" if pool.include_deferred else "not counted"
        parts.append(f"{usage.deferred} deferred ({counted})")
    parts.append(f"{usage.open} open")
    return parts


def one_line(usage: PoolUsage) -> str:
    """`figures` joined: "3 of 128 slots occupied · 2 queued · 125 open"."""
    return " · ".join(figures(usage))


def missing_pool(name: str) -> str:
    """What a page says of a pool that does not exist (deleted, or never made)."""
    return (
        f"Pool {name!r} does not exist. The scheduler fails a task whose pool is missing when"
        " the task is ready (the reason shows on the task); create the pool, then clear the task."
    )


def pool_note(ti: TaskInstance, usage: PoolUsage | None) -> str | None:
    """What the pool means for this task instance now, or None when there is nothing to
    say (it holds its slots, or it is done and its pool exists)."""
    if usage is None:
        if ti.state.is_finished:
            return (
                f"Pool {ti.pool!r} does not exist (any more): cleared, this task would fail"
                " until the pool is made again."
            )
        return missing_pool(ti.pool)
    if ti.state not in _WILL_ASK:
        return None
    pool = usage.pool
    never = never_fits(ti.pool_slots, pool.name, pool.slots)
    if never is not None:
        return f"This task can never run in its pool: {never}."
    if ti.state is not TaskState.SCHEDULED:
        return None
    if pool.slots == 0:
        return (
            f"Waiting: pool {pool.name!r} has 0 slots (paused on purpose), so its tasks wait"
            " until it is given some."
        )
    if usage.open < ti.pool_slots:
        return (
            f"Waiting for a slot: this try needs {slots_word(ti.pool_slots)} of pool"
            f" {pool.name!r}, which has {usage.open} open."
        )
    return None


@dataclass(frozen=True, slots=True)
class PoolOfDag:
    """A pool a DAG's tasks name: its use (None: no such pool, or not shown to this visitor)
    and the tasks that name it, each with its pool_slots."""

    name: str
    tasks: tuple[tuple[str, int], ...]
    usage: PoolUsage | None = None


def pools_of_tasks(tasks: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    """The pools serialized tasks name, by name in order (default_pool first), each with
    its tasks and their pool_slots in DAG order."""
    found: dict[str, list[tuple[str, int]]] = {}
    for task in tasks:
        name = task.get("pool") or DEFAULT_POOL
        slots = task.get("pool_slots")
        found.setdefault(str(name), []).append(
            (str(task["task_id"]), slots if isinstance(slots, int) else 1)
        )
    return dict(sorted(found.items(), key=lambda item: (item[0] != DEFAULT_POOL, item[0])))
