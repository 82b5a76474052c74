"""What ExternalTaskMarkers add to a clear with downstream: for each marker among the tasks
cleared, the other DAG's task in its run at the marker's logical date and that task's
downstream, following markers there in turn, at most the first marker's recursion_depth DAGs
deep (Airflow's rule: past it the clear is refused, as a likely cycle).

The marker's fields are templates as the DAG file wrote them; they are rendered here, in a
sandbox, with the clearing run's dates (logical_date, ds, ts, data_interval_*, run_id)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Connection

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import Run, TaskInstance
from slipstream.core.states import TaskState
from slipstream.errors import InvalidInputError
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store.plans import PlanCache

Found = list[tuple[TaskInstance, Run]]


def has_markers(plan: DagPlan | None, tasks: Collection[str] | None) -> bool:
    if plan is None:
        return False
    names = plan.order if tasks is None else tasks
    return any(t in plan.tasks and plan.tasks[t].external_marker for t in names)


def marked_instances(
    conn: Connection,
    plans: PlanCache,
    run: Run,
    plan: DagPlan,
    tasks: Collection[str] | None,
    wanted: frozenset[TaskState] | None,
) -> Found:
    """Task instances of other DAGs the markers among `tasks` of `run` reach, recursively."""
    found: Found = []
    _follow(conn, plans, run, plan, tasks, wanted, 0, None, found, set())
    return found


def _follow(
    conn: Connection,
    plans: PlanCache,
    run: Run,
    plan: DagPlan,
    tasks: Collection[str] | None,
    wanted: frozenset[TaskState] | None,
    depth: int,
    limit: int | None,
    found: Found,
    seen: set[tuple[int, str]],
) -> None:
    for task_id in sorted(plan.order if tasks is None else tasks):
        spec = plan.tasks.get(task_id)
        marker = spec.external_marker if spec is not None else None
        if not marker:
            continue
        max_depth = limit if limit is not None else int(marker["recursion_depth"])
        if depth + 1 > max_depth:
            raise InvalidInputError(
                f"Maximum recursion depth {max_depth} reached for ExternalTaskMarker "
                f"{task_id}. Attempted to clear too many tasks or there may be a cyclic "
                "dependency."
            )
        dag_id, target, when = _rendered(marker, run, task_id)
        other = runs_store.find_at_logical_date(conn, dag_id, when)
        if other is None or (other.id, target) in seen:
            continue  # no run of that DAG at that date: nothing there to clear
        seen.add((other.id, target))
        other_plan = plans.get(conn, other.version_id)
        if other_plan is None or target not in other_plan.tasks:
            raise InvalidInputError(
                f"ExternalTaskMarker {task_id!r} names task {target!r}, which DAG {dag_id!r} "
                f"does not have (run {other.run_id!r})"
            )
        reached = _with_downstream(other_plan, target)
        found.extend(
            (ti, other)
            for ti in ti_store.list_for_run(conn, other.id)
            if ti.task_id in reached and (wanted is None or ti.state in wanted)
        )
        _follow(conn, plans, other, other_plan, reached, wanted, depth + 1, max_depth, found, seen)


def _with_downstream(plan: DagPlan, task_id: str) -> set[str]:
    reached = {task_id}
    stack = [task_id]
    while stack:
        for down in plan.tasks[stack.pop()].downstream:
            if down not in reached:
                reached.add(down)
                stack.append(down)
    return reached


def _rendered(marker: Mapping[str, Any], run: Run, task_id: str) -> tuple[str, str, datetime]:
    env = SandboxedEnvironment()
    moment = run.logical_date or run.data_interval_start or run.queued_at
    context = {
        "logical_date": moment,
        "execution_date": moment,
        "ds": moment.strftime("%Y-%m-%d"),
        "ds_nodash": moment.strftime("%Y%m%d"),
        "ts": moment.isoformat(),
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
        "run_id": run.run_id,
        "dag_run": run,
    }
    values = []
    for field in ("dag_id", "task_id", "logical_date"):
        try:
            values.append(env.from_string(str(marker[field])).render(context).strip())
        except TemplateError as exc:
            raise InvalidInputError(
                f"ExternalTaskMarker {task_id!r}: its {field} template cannot be rendered "
                f"for run {run.run_id!r}: {exc}"
            ) from None
    try:
        when = datetime.fromisoformat(values[2])
    except ValueError:
        raise InvalidInputError(
            f"ExternalTaskMarker {task_id!r}: logical_date rendered to {values[2]!r}, not an "
            "ISO 8601 date"
        ) from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return values[0], values[1], when
