"""Which ready tries get an executor slot, and in what order: the highest effective priority
first, then the earliest logical date (Airflow's order for queued work), DAGs taking turns where
priorities tie, within every limit: free executor slots, each DAG's max_active_tasks, pool
slots, and each task's max_active_tis_per_dag and max_active_tis_per_dagrun.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from slipstream.core.pools import DEFAULT_POOL

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ready task instance waiting for a slot. `rank` orders candidates of one DAG:
    (-effective priority, logical date as a timestamp, arrival)."""

    run_pk: int
    task_id: str
    rank: tuple[int, float, int]
    pool: str = DEFAULT_POOL
    pool_slots: int = 1
    max_per_dag: int | None = None  # max_active_tis_per_dag
    max_per_run: int | None = None  # max_active_tis_per_dagrun
    map_index: int = -1  # which instance, for a mapped task

    @property
    def priority(self) -> int:
        return -self.rank[0]


def never_fits(pool_slots: int, pool: str, pool_size: int | None) -> str | None:
    """Why a try needing `pool_slots` can never run in its pool of `pool_size` slots (None:
    no such pool), or None. Airflow leaves such a task scheduled for ever (logging a warning
    at each pass); here it fails at once, saying why and what to change. A pool of 0 slots
    is a pool paused on purpose: its tasks wait."""
    if pool_size is None:
        return (
            f"pool {pool!r} does not exist: create it (`slipstream pools set {pool} SLOTS"
            f" DESCRIPTION` or POST /api/v1/pools), then clear this task"
        )
    if pool_size == 0 or pool_slots <= pool_size:
        return None
    setting = " (SLIPSTREAM_DEFAULT_POOL_SLOTS)" if pool == DEFAULT_POOL else ""
    return (
        f"pool_slots={pool_slots} is more than the {pool_size} slots of pool {pool!r}"
        f"{setting}: this task could never run. Lower its pool_slots, or make the pool larger"
        f" (`slipstream pools set`)"
    )


@dataclass(slots=True)
class Admission(Generic[K]):
    taken: list[tuple[K, Candidate]] = field(default_factory=list)
    # Examined (or drawn) and not taken: they wait for the next pass, in their place.
    passed_over: list[tuple[K, Candidate]] = field(default_factory=list)


def admit(
    queues: Mapping[K, Iterator[Candidate]],
    *,
    free: int,
    dag_room: Mapping[K, int],
    pool_room: Mapping[str, int],
    task_active: Mapping[tuple[K, str], int],
    run_task_active: Mapping[tuple[int, str], int],
) -> Admission[K]:
    """Take up to `free` candidates. Each queue yields its DAG's candidates best first and is
    drawn lazily, so a pass costs what it takes (plus what limits make it pass over), not the
    length of the queues. A candidate that does not fit (its pool is short of slots, its task
    is at a limit) is passed over and lower-priority ones may go, as in Airflow."""
    result: Admission[K] = Admission()
    room = dict(dag_room)
    pools = dict(pool_room)
    per_task: Counter[tuple[K, str]] = Counter()
    per_run: Counter[tuple[int, str]] = Counter()
    # (-priority, turns taken by the DAG, DAG's position, DAG, candidate): equal priorities
    # go to the DAG that has taken fewest slots in this pass, so none starves another.
    heads: list[tuple[int, int, int, K, Candidate]] = []
    for position, (key, items) in enumerate(queues.items()):
        if room.get(key, 0) > 0:
            first = next(items, None)
            if first is not None:
                heads.append((first.rank[0], 0, position, key, first))
    heapq.heapify(heads)
    while heads and free > 0:
        _, turns, position, key, candidate = heapq.heappop(heads)
        task_key = (key, candidate.task_id)
        run_key = (candidate.run_pk, candidate.task_id)
        fits = (
            pools.get(candidate.pool, 0) >= candidate.pool_slots
            and (
                candidate.max_per_dag is None
                or task_active.get(task_key, 0) + per_task[task_key] < candidate.max_per_dag
            )
            and (
                candidate.max_per_run is None
                or run_task_active.get(run_key, 0) + per_run[run_key] < candidate.max_per_run
            )
        )
        if fits:
            result.taken.append((key, candidate))
            free -= 1
            room[key] -= 1
            pools[candidate.pool] -= candidate.pool_slots
            per_task[task_key] += 1
            per_run[run_key] += 1
            turns += 1
            if all(slots <= 0 for slots in pools.values()):
                break  # no pool has a slot left: nothing else can go
        else:
            result.passed_over.append((key, candidate))
        if room[key] > 0:
            following = next(queues[key], None)
            if following is not None:
                heapq.heappush(heads, (following.rank[0], turns, position, key, following))
    result.passed_over.extend((key, candidate) for _, _, _, key, candidate in heads)
    return result
