"""DAG leases on PostgreSQL: which scheduler job schedules which DAG (`dags.scheduler_job_id`),
and the fence a scheduler's pass takes on its own job row.

Several schedulers share a database by each owning a set of DAGs: only a DAG's owner creates,
starts, plans and ends its runs and tries, so each scheduler's memory and every per-DAG limit
stay in one process (design: docs/design/scale-out.md, 2.1 and 2.3). Ownership is one column,
so a DAG never has two owners; who takes what is decided by scheduler/leases.py.

Every lease query locks `dags` rows with `SKIP LOCKED`: a keeper never waits on a DAG a parser,
a person or another keeper is changing, so it cannot deadlock with them; a DAG skipped is
looked at again at the next check. Only `release_all`, at a graceful stop, waits.

PostgreSQL only (each function refuses SQLite by name): on SQLite one scheduler owns
everything and none of this is consulted.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    exists,
    func,
    literal,
    select,
    update,
)

from slipstream.core.states import ACTIVE_TASK_STATES, RunState
from slipstream.store.liveness import require_postgresql
from slipstream.store.tables import dags, runs, task_instances
from slipstream.store.tables import scheduler_jobs as jobs

_RUNNING = "running"
_ACTIVE_RUN_STATES = sorted({RunState.QUEUED.value, RunState.RUNNING.value})
_ACTIVE_TI_STATES = sorted(state.value for state in ACTIVE_TASK_STATES)

_owner = dags.c.scheduler_job_id


def owned(conn: Connection, job_id: int, *, only_active: bool = False) -> list[str]:
    """The DAGs `job_id` owns (active or not, unless `only_active`), by id."""
    require_postgresql(conn, "reading DAG leases")
    query = select(dags.c.dag_id).where(_owner == job_id).order_by(dags.c.dag_id)
    if only_active:
        query = query.where(dags.c.is_active.is_(True))
    return list(conn.execute(query).scalars())


def active_count(conn: Connection) -> int:
    """How many DAGs are active: what the schedulers share."""
    require_postgresql(conn, "counting DAG leases")
    query = select(func.count()).select_from(dags).where(dags.c.is_active.is_(True))
    return int(conn.execute(query).scalar_one())


def active_owners(conn: Connection) -> dict[int | None, int]:
    """How many active DAGs each owner holds (None: nobody)."""
    require_postgresql(conn, "counting DAG leases")
    query = select(_owner, func.count()).where(dags.c.is_active.is_(True)).group_by(_owner)
    return {owner: int(count) for owner, count in conn.execute(query).tuples()}


def orphaned_owners(conn: Connection) -> set[int]:
    """Owners of some DAG that are not a running job any more: declared lost, ended without
    handing their DAGs back, or deleted by retention. Their DAGs are free to claim."""
    require_postgresql(conn, "reading DAG leases")
    running = select(jobs.c.id).where(jobs.c.state == _RUNNING)
    query = select(_owner).where(_owner.is_not(None), _owner.not_in(running)).distinct()
    return {int(owner) for owner in conn.execute(query).scalars()}


def claim(conn: Connection, job_id: int, *, dead_owners: Collection[int], want: int) -> list[str]:
    """Take every DAG of `dead_owners` (active or not: a deactivated DAG may still hold a run
    that needs its scheduler to end it), then unowned active DAGs by id until `want` active
    DAGs were taken in all. Rows another transaction holds are skipped, for the next check.
    Returns what was taken, by id."""
    require_postgresql(conn, "claiming DAGs")
    dead = sorted({int(owner) for owner in dead_owners} - {job_id})
    chosen: list[str] = []
    active_taken = 0
    if dead:
        orphans = (
            select(dags.c.dag_id, dags.c.is_active)
            .where(_owner.in_(dead))
            .order_by(dags.c.dag_id)
            .with_for_update(skip_locked=True)
        )
        for dag_id, is_active in conn.execute(orphans).tuples():
            chosen.append(dag_id)
            active_taken += bool(is_active)
    if want > active_taken:
        unowned = (
            select(dags.c.dag_id)
            .where(dags.c.is_active.is_(True), _owner.is_(None))
            .order_by(dags.c.dag_id)
            .limit(want - active_taken)
            .with_for_update(skip_locked=True)
        )
        chosen += conn.execute(unowned).scalars()
    if chosen:
        conn.execute(update(dags).where(dags.c.dag_id.in_(chosen)).values(scheduler_job_id=job_id))
    return sorted(chosen)


def release(conn: Connection, job_id: int, dag_ids: Collection[str]) -> list[str]:
    """Hand back those of `dag_ids` that `job_id` still owns and nobody else is changing now
    (skipped rows stay owned, for the next check); returns what was released."""
    require_postgresql(conn, "releasing DAGs")
    if not dag_ids:
        return []
    locked = (
        select(dags.c.dag_id)
        .where(dags.c.dag_id.in_(sorted(dag_ids)), _owner == job_id)
        .order_by(dags.c.dag_id)
        .with_for_update(skip_locked=True)
    )
    chosen = list(conn.execute(locked).scalars())
    if chosen:
        conn.execute(update(dags).where(dags.c.dag_id.in_(chosen)).values(scheduler_job_id=None))
    return chosen


def release_all(conn: Connection, job_id: int) -> list[str]:
    """Hand back every DAG `job_id` owns (a graceful stop: a peer claims them at its next
    check). Waits for rows others hold, in id order, so nothing stays owned by a stopped job."""
    require_postgresql(conn, "releasing DAGs")
    locked = select(dags.c.dag_id).where(_owner == job_id).order_by(dags.c.dag_id).with_for_update()
    chosen = list(conn.execute(locked).scalars())
    if chosen:
        conn.execute(update(dags).where(dags.c.dag_id.in_(chosen)).values(scheduler_job_id=None))
    return chosen


def quiet(conn: Connection, dag_ids: Sequence[str]) -> list[str]:
    """Those of `dag_ids` with no queued or running run and no queued or running task
    instance: a new owner adopts nothing in flight, so they are released first."""
    require_postgresql(conn, "reading DAG leases")
    if not dag_ids:
        return []
    busy_run = exists(
        select(literal(1)).where(
            runs.c.dag_id == dags.c.dag_id, runs.c.state.in_(_ACTIVE_RUN_STATES)
        )
    )
    busy_try = exists(
        select(literal(1)).where(
            task_instances.c.dag_id == dags.c.dag_id,
            task_instances.c.state.in_(_ACTIVE_TI_STATES),
        )
    )
    query = (
        select(dags.c.dag_id)
        .where(and_(dags.c.dag_id.in_(sorted(set(dag_ids))), ~busy_run, ~busy_try))
        .order_by(dags.c.dag_id)
    )
    return list(conn.execute(query).scalars())


_FENCE = (
    select(jobs.c.state).where(jobs.c.id == bindparam("k_job_id")).with_for_update(key_share=True)
)


def fence(conn: Connection, job_id: int) -> bool:
    """Whether `job_id` is still a running job, holding its row until this transaction ends.

    A scheduler's pass begins with it. `FOR NO KEY UPDATE`, not `FOR SHARE`: the pass's own
    heartbeat `UPDATE` would have to upgrade a share lock, and would deadlock with a judge
    waiting to declare the job lost. That judge waits for this lock instead, so a pass already
    past the fence commits before anyone adopts its DAGs, and every later pass sees 'lost'."""
    require_postgresql(conn, "the scheduler's fence")
    state = conn.execute(_FENCE, {"k_job_id": job_id}).scalar_one_or_none()
    return state == _RUNNING
