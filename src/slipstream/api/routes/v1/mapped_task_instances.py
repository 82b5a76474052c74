"""/api/v1 instances of mapped tasks: one by map index (get, mark), and all of a task's
(`listMapped`, with Airflow's filters, ordering and 404s)."""

from __future__ import annotations

from fastapi import APIRouter

from slipstream.api.deps import ApiServices, ServicesDep
from slipstream.api.errors import ApiError
from slipstream.api.routes.v1.common import PageDep
from slipstream.api.routes.v1.dag_runs import check_run_dag
from slipstream.api.routes.v1.filters import MappedInstanceFiltersDep
from slipstream.api.routes.v1.run_shapes import (
    TaskInstanceBody,
    TaskInstanceCollection,
    TaskInstanceReference,
    UpdateTaskInstance,
    reference,
    task_instance_body,
)
from slipstream.api.routes.v1.task_instances import (
    TaskInstanceEditor,
    TaskInstanceReader,
    query,
    ti_not_found,
)
from slipstream.auth.roles import Action
from slipstream.core.states import TaskState
from slipstream.errors import InvalidInputError, RunNotFound, TaskInstanceNotFound, TaskNotFound


def get_mapped_task_instance(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    map_index: int,
    principal: TaskInstanceReader,
    services: ServicesDep,
) -> TaskInstanceBody:
    """One instance of a mapped task (map index -1: an unmapped task, as Airflow allows)."""
    check_run_dag(services, principal, Action.TASKS_READ, dag_id)
    try:
        return task_instance_body(
            *services.runs.task_instance(dag_id, dag_run_id, task_id, map_index)
        )
    except (RunNotFound, TaskInstanceNotFound):
        raise ti_not_found() from None


# listMapped's order_by: Airflow's names, '-' for descending.
_MAPPED_ORDER = {"map_index", "state", "start_date", "end_date", "try_number", "hostname"}


def _order_by(raw: str | None) -> list[tuple[str, bool]]:
    if raw is None:
        return [("map_index", False)]
    name = raw.removeprefix("-")
    if name not in _MAPPED_ORDER:
        raise InvalidInputError(f"Ordering with '{raw}' is not supported", field="order_by")
    return [(name, raw.startswith("-"))]


def get_mapped_task_instances(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    principal: TaskInstanceReader,
    filters: MappedInstanceFiltersDep,
    page: PageDep,
    services: ServicesDep,
) -> TaskInstanceCollection:
    """The instances of one mapped task in a run, by map index (Airflow's listMapped)."""
    check_run_dag(services, principal, Action.TASKS_READ, dag_id)
    ordering = _order_by(filters.order_by)
    found = query(
        services,
        dag_ids=[dag_id],
        run_ids=[dag_run_id],
        task_ids=[task_id],
        filters=filters,
        page=page,
        mapped_only=True,
        order_by=ordering,
    )
    if found.total_entries == 0:
        _explain_no_instances(services, dag_id, dag_run_id, task_id)
    return found


def _explain_no_instances(services: ApiServices, dag_id: str, run_id: str, task_id: str) -> None:
    """listMapped found nothing: a 404 in Airflow's words unless the task is mapped and not
    expanded yet (or filtered out), which is an empty page."""
    try:
        is_mapped = services.runs.is_mapped(dag_id, run_id, task_id)
    except RunNotFound:
        raise ApiError(404, "DAG Run not found") from None
    except TaskNotFound:
        raise ApiError(404, f"Task id {task_id} not found") from None
    if not is_mapped:
        raise ApiError(404, f"Task id {task_id} is not mapped")


def patch_mapped_task_instance(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    map_index: int,
    body: UpdateTaskInstance,
    principal: TaskInstanceEditor,
    services: ServicesDep,
) -> TaskInstanceReference:
    """Mark one instance of a mapped task; `dry_run` defaults to true."""
    check_run_dag(services, principal, Action.TASKS_EDIT, dag_id)
    try:
        ti, run = services.runs.task_instance(dag_id, dag_run_id, task_id, map_index)
    except (RunNotFound, TaskInstanceNotFound):
        raise ti_not_found() from None
    if not body.dry_run:
        services.run_changes.mark_task_instances(
            dag_id,
            dag_run_id,
            task_id,
            TaskState(body.new_state),
            dry_run=False,
            by=principal.user.username,
            map_indexes=[map_index],
        )
    return reference(ti, run)


def router() -> APIRouter:
    api = APIRouter(tags=["TaskInstance"])
    task_path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}"
    # listMapped first: `{map_index}` would take the word otherwise.
    api.add_api_route(f"{task_path}/listMapped", get_mapped_task_instances, methods=["GET"])
    api.add_api_route(f"{task_path}/{{map_index}}", get_mapped_task_instance, methods=["GET"])
    api.add_api_route(f"{task_path}/{{map_index}}", patch_mapped_task_instance, methods=["PATCH"])
    return api
