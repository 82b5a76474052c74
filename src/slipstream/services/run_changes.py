"""Use cases in which a person changes runs and task instances: mark a run, clear a run or
some tasks, mark tasks, set a note, delete a run.

Airflow's rules, Slipstream's mechanics: every move is a compare-and-set checked against the
transition table, records who did it and why, and wakes the scheduler with a `runpk:` hint so
it drops what it remembered of the run (and stops tries whose task was marked or cleared).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from slipstream.clock import Clock
from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import Run, TaskInstance
from slipstream.core.states import (
    FINISHED_TASK_STATES,
    RunState,
    TaskState,
    can_move_run,
    can_move_task,
)
from slipstream.errors import (
    DagNotFound,
    InvalidInputError,
    InvalidStateTransition,
    RunNotFound,
    TaskInstanceNotFound,
    TaskNotFound,
)
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store import xcoms as xcom_store
from slipstream.store.db import Database, retry_transient
from slipstream.wakeup import WakeupSender

# A task instance read and then moved by the scheduler before our write is read again; more
# than a few losses in a row means something is wrong, and the caller hears of it.
_CAS_ATTEMPTS = 5

MARKABLE_RUN_STATES = frozenset({RunState.QUEUED, RunState.SUCCESS, RunState.FAILED})
MARKABLE_TASK_STATES = frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED})
_FAILED = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED})


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
    def __init__(self, db: Database, *, clock: Clock, wakeup: WakeupSender | None = None) -> None:
        self._db = db
        self._clock = clock
        self._wakeup = wakeup

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
    def delete_run(self, dag_id: str, run_id: str) -> None:
        """Delete the run with its task instances, tries and XComs. Tries still running are
        stopped by the scheduler; what they report finds nothing to write to."""
        with self._db.write() as conn:
            run = self._run(conn, dag_id, run_id)
            runs_store.delete_run(conn, run.id)
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
    ) -> Affected:
        """Airflow's clearTaskInstances: the tasks named (all if none), with their upstream or
        downstream if asked, in the run named or the runs whose logical date is in
        [start_date, end_date]; only failed ones by default."""
        now = self._clock.now()
        with self._db.write() as conn:
            plan = self._plan(conn, dag_id)
            tasks = set(plan.order) if not task_ids else _known(plan, dag_id, task_ids)
            tasks = _widen(plan, tasks, selection)
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
            wanted: frozenset[TaskState] | None = _FAILED if only_failed else None
            if only_running:  # with only_failed too, nothing matches both: as Airflow's
                wanted = frozenset({TaskState.RUNNING}) & (wanted or frozenset(TaskState))
            affected = [
                (ti, run)
                for run in runs
                for ti in ti_store.list_for_run(conn, run.id)
                if ti.task_id in tasks and (wanted is None or ti.state in wanted)
            ]
            if not dry_run:
                self._clear(
                    conn, affected, now, reason=f"cleared by {by}", reset_runs=reset_dag_runs
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
    ) -> Affected:
        """Airflow's set_task_instance_state: mark the task (and its upstream, downstream,
        future or past ones if asked), then clear failed tasks downstream of it so the run
        can go on, requeueing the run if it had finished."""
        if state not in MARKABLE_TASK_STATES:
            raise InvalidInputError(
                f"'{state}' is not one of ['success', 'failed', 'skipped'] - 'new_state'",
                field="new_state",
            )
        now = self._clock.now()
        with self._db.write() as conn:
            plan = self._plan(conn, dag_id)
            _known(plan, dag_id, [task_id])
            anchor = self._run(conn, dag_id, run_id)
            if ti_store.get(conn, anchor.id, task_id) is None and not dry_run:
                raise TaskInstanceNotFound(dag_id, run_id, task_id)
            tasks = _widen(plan, {task_id}, selection)
            runs = self._runs_around(conn, anchor, selection)
            affected = [
                (ti, run)
                for run in runs
                for ti in ti_store.list_for_run(conn, run.id)
                if ti.task_id in tasks and ti.state is not state
            ]
            if dry_run:
                return Affected(affected)
            reason = f"marked {state.value} by {by}"
            marked = self._force_each(conn, affected, state, now, reason=reason)
            # As Airflow does: failed tasks downstream of a mark run again.
            downstream = _widen(plan, {task_id}, Selection(downstream=True)) - tasks
            marked_runs = {run.id: run for _, run in marked}.values()
            retry = [
                (ti, run)
                for run in marked_runs
                for ti in ti_store.list_for_run(conn, run.id)
                if ti.task_id in downstream and ti.state in _FAILED
            ]
            self._clear(conn, retry, now, reason=f"cleared by {by} after a mark", reset_runs=True)
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
        plans: dict[int, DagPlan | None] = {}
        by_run: dict[int, Run] = {}
        for ti, run in found:
            if run.version_id not in plans:
                plans[run.version_id] = _plan_of(conn, run.version_id)
            plan = plans[run.version_id]
            spec = plan.tasks.get(ti.task_id) if plan else None
            # Airflow's rule: a cleared task gets its full retries again from here.
            retries = spec.retries if spec is not None else ti.max_tries
            self._force(
                conn, ti, TaskState.NONE, now, reason=reason, max_tries=ti.try_number + retries
            )
            by_run[run.id] = run
        for run in by_run.values():
            xcom_store.clear(conn, run.id, [ti.task_id for ti, r in found if r.id == run.id])
            current = runs_store.get_run_by_pk(conn, run.id)
            if reset_runs and current is not None and current.state.is_finished:
                self._move_run(conn, current, RunState.QUEUED, now, reason=reason)
            else:
                runs_store.touch(conn, run.id, now, reason=reason)

    def _move_tasks(
        self,
        conn: Connection,
        run: Run,
        sources: Collection[TaskState],
        target: TaskState,
        now: datetime,
        *,
        reason: str,
    ) -> None:
        found = [(ti, run) for ti in ti_store.list_for_run(conn, run.id) if ti.state in sources]
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
            if not can_move_task(current.state, target, forced=True):
                raise InvalidStateTransition(
                    f"task {current.task_id!r} of run {current.run_id!r}",
                    current.state.value,
                    target.value,
                )
            if ti_store.force(conn, current, target, now, reason=reason, max_tries=max_tries):
                return True
            current = ti_store.get(conn, ti.run_pk, ti.task_id)
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
            if not can_move_run(current.state, target, forced=True):
                raise InvalidStateTransition(
                    f"run {run.run_id!r}", current.state.value, target.value
                )
            if runs_store.move_run(conn, run.id, [current.state], target, now, reason=reason):
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

    def _plan(self, conn: Connection, dag_id: str) -> DagPlan:
        dag = dags_store.get_dag(conn, dag_id)
        plan = _plan_of(conn, dag.version_id) if dag and dag.version_id is not None else None
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
            self._wakeup.notify(f"runpk:{run.id}")

    def _notify_all(self, runs: Iterable[Run]) -> None:
        for pk in sorted({run.id for run in runs}):
            if self._wakeup is not None:
                self._wakeup.notify(f"runpk:{pk}")


_unfinished = frozenset(TaskState) - FINISHED_TASK_STATES


def _plan_of(conn: Connection, version_id: int) -> DagPlan | None:
    version = dags_store.get_version(conn, version_id)
    if version is None:
        return None
    return DagPlan.from_structure(
        version.structure, version_id=version.id, version_hash=version.version_hash
    )


def _known(plan: DagPlan, dag_id: str, task_ids: Iterable[str]) -> set[str]:
    wanted = set(task_ids)
    for task_id in sorted(wanted):
        if task_id not in plan.tasks:
            raise TaskNotFound(dag_id, task_id)
    return wanted


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
