"""Use cases in which a person changes runs and task instances: mark a run, clear a run or
some tasks, mark tasks, set a note, delete a run.

Airflow's rules, Slipstream's mechanics: every move is a compare-and-set checked against the
transition table, records who did it and why, and wakes the scheduler with a run-changed hint
so it drops what it remembered of the run (and stops tries whose task was marked or cleared).
Which tasks a change reaches is read from the DAG version each run is pinned to.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from slipstream.clock import Clock
from slipstream.core import event_log as events
from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import Run, TaskInstance
from slipstream.core.setup_teardown import clear_reach
from slipstream.core.states import (
    FAILED_TASK_STATES,
    FINISHED_TASK_STATES,
    RunState,
    TaskState,
)
from slipstream.core.transitions import RunTransition, TaskTransition
from slipstream.errors import (
    DagNotFound,
    InvalidInputError,
    InvalidStateTransition,
    RunNotFound,
    TaskInstanceNotFound,
    TaskNotFound,
)
from slipstream.services.external_markers import has_markers, marked_instances
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store import transitions
from slipstream.store import xcoms as xcom_store
from slipstream.store.db import Database, retry_transient
from slipstream.store.event_log import record_event
from slipstream.store.plans import PlanCache
from slipstream.wakeup import Hint, HintSender

# A task instance read and then moved by the scheduler before our write is read again; more
# than a few losses in a row means something is wrong, and the caller hears of it.
_CAS_ATTEMPTS = 5

MARKABLE_RUN_STATES = frozenset({RunState.QUEUED, RunState.SUCCESS, RunState.FAILED})
MARKABLE_TASK_STATES = frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED})


@dataclass(frozen=True, slots=True)
class Selection:
    """Which task instances a clear or a mark reaches, around a task and a run."""

    upstream: bool = False
    downstream: bool = False
    future: bool = False  # runs with a later logical date too
    past: bool = False  # runs with an earlier logical date too


@dataclass(frozen=True, slots=True)
class Affected:
    """Task instances a change reached (or would reach, on a dry run), with their runs."""

    task_instances: list[tuple[TaskInstance, Run]]


class RunChangeService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        wakeup: HintSender | None = None,
        plans: PlanCache | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._wakeup = wakeup
        self._plans = plans if plans is not None else PlanCache()

    # ----------------------------------------------------------------- runs

    @retry_transient
    def mark_run(self, dag_id: str, run_id: str, state: RunState, *, by: str) -> Run:
        """Airflow's rules: success marks the run's unfinished tasks success; failed marks its
        running tasks failed and those not yet run skipped; queued requeues the run alone."""
        if state not in MARKABLE_RUN_STATES:
            raise InvalidInputError(
                f"'{state}' is not one of ['success', 'failed', 'queued'] - 'state'", field="state"
            )
        now = self._clock.now()
        reason = f"marked {state.value} by {by}"
        with self._db.write() as conn:
            run = self._run(conn, dag_id, run_id)
            if state is RunState.SUCCESS:
                self._move_tasks(conn, run, _unfinished, TaskState.SUCCESS, now, reason=reason)
            elif state is RunState.FAILED:
                self._move_tasks(
                    conn, run, {TaskState.RUNNING}, TaskState.FAILED, now, reason=reason
                )
                pending = _unfinished - {TaskState.RUNNING}
                self._move_tasks(conn, run, pending, TaskState.SKIPPED, now, reason=reason)
            self._move_run(conn, run, state, now, reason=reason)
            _audit(conn, events.MARK_RUN, now, by, run, extra={"state": state.value})
            changed = runs_store.get_run_by_pk(conn, run.id)
        assert changed is not None
        self._notify(changed)
        return changed

    @retry_transient
    def clear_run(self, dag_id: str, run_id: str, *, dry_run: bool, by: str) -> Affected | Run:
        """Every task of the run back to no state, to run again; the run back to queued if it
        had finished. A dry run returns what would be cleared and changes nothing."""
        now = self._clock.now()
        with self._db.write() as conn:
            run = self._run(conn, dag_id, run_id)
            found = [(ti, run) for ti in ti_store.list_for_run(conn, run.id)]
            if dry_run:
                return Affected(found)
            self._clear(conn, found, now, reason=f"cleared by {by}", reset_runs=True)
            _audit(conn, events.CLEAR, now, by, run, extra={"task_instances": len(found)})
            changed = runs_store.get_run_by_pk(conn, run.id)
        assert changed is not None
        self._notify(changed)
        return changed

    @retry_transient
    def set_note(self, dag_id: str, run_id: str, note: str | None) -> Run:
        if note is not None and len(note) > 1000:
            raise InvalidInputError("note must be at most 1000 characters", field="note")
        now = self._clock.now()
        with self._db.write() as conn:
            run = self._run(conn, dag_id, run_id)
            runs_store.set_note(conn, run.id, note, now)
            changed = runs_store.get_run_by_pk(conn, run.id)
        assert changed is not None
        return changed

    @retry_transient
    def delete_run(self, dag_id: str, run_id: str, *, by: str | None = None) -> None:
        """Delete the run with its task instances, tries and XComs. Tries still running are
        stopped by the scheduler; what they report finds nothing to write to."""
        with self._db.write() as conn:
            run = self._run(conn, dag_id, run_id)
            runs_store.delete_run(conn, run.id)
            _audit(conn, events.DELETE_RUN, self._clock.now(), by, run)
        self._notify(run)

    # ----------------------------------------------------------------- task instances

    @retry_transient
    def clear_task_instances(
        self,
        dag_id: str,
        *,
        dry_run: bool,
        by: str,
        run_id: str | None = None,
        task_ids: Sequence[str] | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        only_failed: bool = True,
        only_running: bool = False,
        reset_dag_runs: bool = True,
        selection: Selection = Selection(),
        map_indexes: Mapping[str, Collection[int]] | None = None,
    ) -> Affected:
        """Airflow's clearTaskInstances: the tasks named (all if none), with their upstream or
        downstream if asked, in the run named or the runs whose logical date is in
        [start_date, end_date]; only failed ones by default. `map_indexes` limits a named
        mapped task to some of its instances."""
        now = self._clock.now()
        with self._db.write() as conn:
            current = self._current_plan(conn, dag_id)
            if run_id is not None:
                anchor = self._run(conn, dag_id, run_id)
                runs = self._runs_around(conn, anchor, selection)
            else:
                found, _ = runs_store.list_runs(
                    conn,
                    dag_ids=[dag_id],
                    logical_date_gte=None if selection.past else start_date,
                    logical_date_lte=None if selection.future else end_date,
                    order_by="logical_date",
                )
                runs = found
            plans = {run.id: self._plans.get(conn, run.version_id) for run in runs}
            if task_ids:
                # A task of the DAG as it is now, or of a version one of these runs has.
                _known([current, *plans.values()], dag_id, task_ids)
            wanted: frozenset[TaskState] | None = FAILED_TASK_STATES if only_failed else None
            if only_running:  # with only_failed too, nothing matches both: as Airflow's
                wanted = frozenset({TaskState.RUNNING}) & (wanted or frozenset(TaskState))
            affected: list[tuple[TaskInstance, Run]] = []
            for run in runs:
                tasks = _with_setups_and_teardowns(
                    plans[run.id], task_ids, _reached(plans[run.id], task_ids, selection), selection
                )
                affected.extend(
                    (ti, run)
                    for ti in ti_store.list_for_run(conn, run.id)
                    if (tasks is None or ti.task_id in tasks)
                    and (wanted is None or ti.state in wanted)
                    and (
                        map_indexes is None
                        or ti.task_id not in map_indexes
                        or ti.map_index in map_indexes[ti.task_id]
                    )
                )
                plan = plans[run.id]
                if selection.downstream and plan is not None and has_markers(plan, tasks):
                    affected.extend(marked_instances(conn, self._plans, run, plan, tasks, wanted))
            affected = _distinct(affected)
            if not dry_run:
                self._clear(
                    conn, affected, now, reason=f"cleared by {by}", reset_runs=reset_dag_runs
                )
                record_event(
                    conn,
                    events.CLEAR,
                    now,
                    owner=by,
                    dag_id=dag_id,
                    run_id=run_id,
                    task_id=task_ids[0] if task_ids and len(task_ids) == 1 else None,
                    extra={
                        "task_ids": list(task_ids or []),
                        "task_instances": len(affected),
                        "only_failed": only_failed,
                    },
                )
        if not dry_run:
            self._notify_all(run for _, run in affected)
        return Affected(affected)

    @retry_transient
    def mark_task_instances(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        state: TaskState,
        *,
        dry_run: bool,
        by: str,
        selection: Selection = Selection(),
        map_indexes: Collection[int] | None = None,
    ) -> Affected:
        """Airflow's set_task_instance_state: mark the task (and its upstream, downstream,
        future or past ones if asked), then clear failed tasks downstream of it so the run
        can go on, requeueing the run if it had finished. `map_indexes` limits the mark of
        a mapped task to those instances (every instance when None)."""
        if state not in MARKABLE_TASK_STATES:
            raise InvalidInputError(
                f"'{state}' is not one of ['success', 'failed', 'skipped'] - 'new_state'",
                field="new_state",
            )
        now = self._clock.now()
        with self._db.write() as conn:
            current = self._current_plan(conn, dag_id)
            anchor = self._run(conn, dag_id, run_id)
            _known([current, self._plans.get(conn, anchor.version_id)], dag_id, [task_id])
            instances = ti_store.mapped_instances(conn, anchor.id, task_id)
            if map_indexes is not None:
                instances = [ti for ti in instances if ti.map_index in map_indexes]
            if not instances and not dry_run:
                raise TaskInstanceNotFound(
                    dag_id, run_id, task_id, map_index=min(map_indexes or [-1])
                )
            runs = self._runs_around(conn, anchor, selection)
            plans = {run.id: self._plans.get(conn, run.version_id) for run in runs}
            affected: list[tuple[TaskInstance, Run]] = []
            for run in runs:
                tasks = _reached(plans[run.id], [task_id], selection)
                affected.extend(
                    (ti, run)
                    for ti in ti_store.list_for_run(conn, run.id)
                    if (tasks is None or ti.task_id in tasks)
                    and ti.state is not state
                    and (
                        map_indexes is None or ti.task_id != task_id or ti.map_index in map_indexes
                    )
                )
            if dry_run:
                return Affected(affected)
            reason = f"marked {state.value} by {by}"
            marked = self._force_each(conn, affected, state, now, reason=reason)
            # As Airflow does: failed tasks downstream of a mark run again.
            marked_runs = {run.id: run for _, run in marked}.values()
            retry: list[tuple[TaskInstance, Run]] = []
            for run in marked_runs:
                plan = plans[run.id]
                if plan is None or task_id not in plan.tasks:
                    continue
                marked_here = _reached(plan, [task_id], selection) or set()
                downstream = _widen(plan, {task_id}, Selection(downstream=True)) - marked_here
                retry.extend(
                    (ti, run)
                    for ti in ti_store.list_for_run(conn, run.id)
                    if ti.task_id in downstream and ti.state in FAILED_TASK_STATES
                )
            self._clear(conn, retry, now, reason=f"cleared by {by} after a mark", reset_runs=True)
            record_event(
                conn,
                events.MARK_TASK_INSTANCES,
                now,
                owner=by,
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                map_index=min(map_indexes) if map_indexes else None,
                logical_date=anchor.logical_date,
                extra={"state": state.value, "task_instances": len(marked)},
            )
            for run in marked_runs:
                if not any(r.id == run.id for _, r in retry):
                    runs_store.touch(conn, run.id, now, reason=reason)
        self._notify_all(run for _, run in marked)
        return Affected(marked)

    # ----------------------------------------------------------------- mechanics

    def _clear(
        self,
        conn: Connection,
        found: Sequence[tuple[TaskInstance, Run]],
        now: datetime,
        *,
        reason: str,
        reset_runs: bool,
    ) -> None:
        by_run: dict[int, Run] = {}
        for ti, run in found:
            plan = self._plans.get(conn, run.version_id)
            spec = plan.tasks.get(ti.task_id) if plan else None
            # Airflow's rule: a cleared task gets its full retries again from here.
            retries = spec.retries if spec is not None else ti.max_tries
            self._force(
                conn, ti, TaskState.NONE, now, reason=reason, max_tries=ti.try_number + retries
            )
            by_run[run.id] = run
        for run in by_run.values():
            xcom_store.clear_instances(
                conn, run.id, [(ti.task_id, ti.map_index) for ti, r in found if r.id == run.id]
            )
            current = runs_store.get_run_by_pk(conn, run.id)
            if reset_runs and current is not None and current.state.is_finished:
                self._move_run(conn, current, RunState.QUEUED, now, reason=reason)
            else:
                runs_store.touch(conn, run.id, now, reason=reason)

    def _move_tasks(
        self,
        conn: Connection,
        run: Run,
        reached: Collection[TaskState],
        target: TaskState,
        now: datetime,
        *,
        reason: str,
    ) -> None:
        """Move the run's tasks now in one of the `reached` states (Airflow's rule for which
        tasks a mark of the run reaches), each on the state it was read in."""
        found = [(ti, run) for ti in ti_store.list_for_run(conn, run.id) if ti.state in reached]
        self._force_each(conn, found, target, now, reason=reason)

    def _force_each(
        self,
        conn: Connection,
        found: Sequence[tuple[TaskInstance, Run]],
        target: TaskState,
        now: datetime,
        *,
        reason: str,
    ) -> list[tuple[TaskInstance, Run]]:
        return [(ti, run) for ti, run in found if self._force(conn, ti, target, now, reason=reason)]

    def _force(
        self,
        conn: Connection,
        ti: TaskInstance,
        target: TaskState,
        now: datetime,
        *,
        reason: str,
        max_tries: int | None = None,
    ) -> bool:
        """Compare-and-set one task instance, reading it again if the scheduler moved it
        between our read and our write; False if it no longer exists."""
        current: TaskInstance | None = ti
        for _ in range(_CAS_ATTEMPTS):
            if current is None:
                return False
            move = TaskTransition.forced(current, target, reason=reason, max_tries=max_tries)
            if transitions.apply_one(conn, move, now):
                return True
            current = ti_store.get(conn, ti.run_pk, ti.task_id, ti.map_index)
        raise InvalidStateTransition(
            f"task {ti.task_id!r} of run {ti.run_id!r} kept changing", ti.state.value, target.value
        )

    def _move_run(
        self, conn: Connection, run: Run, target: RunState, now: datetime, *, reason: str
    ) -> None:
        current: Run | None = run
        for _ in range(_CAS_ATTEMPTS):
            if current is None:
                raise RunNotFound(run.dag_id, run.run_id)
            move = RunTransition.forced(current, target, reason=reason)
            if transitions.apply_one(conn, move, now):
                return
            current = runs_store.get_run_by_pk(conn, run.id)
        raise InvalidStateTransition(
            f"run {run.run_id!r} kept changing", run.state.value, target.value
        )

    def _run(self, conn: Connection, dag_id: str, run_id: str) -> Run:
        run = runs_store.get_run(conn, dag_id, run_id)
        if run is None:
            raise RunNotFound(dag_id, run_id)
        return run

    def _current_plan(self, conn: Connection, dag_id: str) -> DagPlan:
        """The DAG's current version: what a task id named by a person may also refer to."""
        dag = dags_store.get_dag(conn, dag_id)
        plan = self._plans.get(conn, dag.version_id) if dag and dag.version_id else None
        if plan is None:
            raise DagNotFound(dag_id)
        return plan

    def _runs_around(self, conn: Connection, anchor: Run, selection: Selection) -> list[Run]:
        if not (selection.future or selection.past) or anchor.logical_date is None:
            return [anchor]
        found, _ = runs_store.list_runs(
            conn,
            dag_ids=[anchor.dag_id],
            logical_date_gte=None if selection.past else anchor.logical_date,
            logical_date_lte=None if selection.future else anchor.logical_date,
            order_by="logical_date",
        )
        return found

    def _notify(self, run: Run) -> None:
        if self._wakeup is not None:
            self._wakeup.notify(Hint.run_changed(run.id))

    def _notify_all(self, runs: Iterable[Run]) -> None:
        for pk in sorted({run.id for run in runs}):
            if self._wakeup is not None:
                self._wakeup.notify(Hint.run_changed(pk))


_unfinished = frozenset(TaskState) - FINISHED_TASK_STATES


def _known(plans: Iterable[DagPlan | None], dag_id: str, task_ids: Iterable[str]) -> None:
    """Refuse a task id that none of these versions of the DAG has."""
    known = {task_id for plan in plans if plan is not None for task_id in plan.tasks}
    for task_id in sorted(set(task_ids)):
        if task_id not in known:
            raise TaskNotFound(dag_id, task_id)


def _reached(
    plan: DagPlan | None, task_ids: Sequence[str] | None, selection: Selection
) -> set[str] | None:
    """The tasks a change named (all if none) with, if asked, their upstream or downstream,
    in a run's pinned version; None (every task) when that version cannot be read."""
    if plan is None:
        return set(task_ids) if task_ids else None
    if not task_ids:
        return set(plan.order)
    return _widen(plan, {t for t in task_ids if t in plan.tasks}, selection)


def _with_setups_and_teardowns(
    plan: DagPlan | None,
    named: Sequence[str] | None,
    tasks: set[str] | None,
    selection: Selection,
) -> set[str] | None:
    """Airflow's rule for a clear: the named tasks' setups run again before them, and their
    teardowns after them (with the upstream cleared too, every upstream setup's teardowns)."""
    if plan is None or not named or tasks is None or not plan.setup_scopes:
        return tasks
    specs = plan.tasks
    return tasks | clear_reach(
        sorted(t for t in set(named) if t in specs),
        upstream={t: spec.upstream for t, spec in specs.items()},
        downstream={t: spec.downstream for t, spec in specs.items()},
        setups={t for t, spec in specs.items() if spec.is_setup},
        teardowns={t for t, spec in specs.items() if spec.is_teardown},
        scopes=plan.setup_scopes,
        with_upstream=selection.upstream,
        with_downstream=selection.downstream,
    )


def _distinct(found: list[tuple[TaskInstance, Run]]) -> list[tuple[TaskInstance, Run]]:
    """Each task instance once (markers may reach one a clear reached already)."""
    seen: set[tuple[int, str, int]] = set()
    kept = []
    for ti, run in found:
        key = (ti.run_pk, ti.task_id, ti.map_index)
        if key not in seen:
            seen.add(key)
            kept.append((ti, run))
    return kept


def _widen(plan: DagPlan, tasks: set[str], selection: Selection) -> set[str]:
    """The tasks with, if asked, everything upstream or downstream of them."""
    result = set(tasks)
    for wanted, edge in ((selection.upstream, "upstream"), (selection.downstream, "downstream")):
        if not wanted:
            continue
        stack = list(tasks)
        while stack:
            for other in getattr(plan.tasks[stack.pop()], edge):
                if other not in result:
                    result.add(other)
                    stack.append(other)
    return result


def _audit(
    conn: Connection,
    event: str,
    now: datetime,
    by: str | None,
    run: Run,
    *,
    extra: Mapping[str, object] | None = None,
) -> None:
    record_event(
        conn,
        event,
        now,
        owner=by,
        dag_id=run.dag_id,
        run_id=run.run_id,
        logical_date=run.logical_date,
        extra=extra,
    )
