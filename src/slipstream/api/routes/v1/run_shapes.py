"""The /api/v1 bodies for DAG runs and task instances, in Airflow 2.10's shapes (v1.yaml's
DAGRun, TaskInstance, TaskInstanceReference and the request forms), and the conversions from
Slipstream's records. Request bodies refuse unknown keys, as Airflow's schemas did."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from slipstream.api.routes.v1.common import iso
from slipstream.core.records import Run, TaskInstance
from slipstream.core.states import TaskState

# Keys of a DAGRun a client may not set (Airflow: "Property is read-only").
_RUN_READ_ONLY = (
    "dag_id",
    "state",
    "start_date",
    "end_date",
    "external_trigger",
    "run_type",
    "last_scheduling_decision",
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------- responses


class DagRunBody(BaseModel):
    dag_run_id: str
    dag_id: str
    logical_date: str | None
    execution_date: str | None
    start_date: str | None
    end_date: str | None
    data_interval_start: str | None
    data_interval_end: str | None
    last_scheduling_decision: str | None
    run_type: str
    state: str
    external_trigger: bool
    conf: dict[str, Any]
    note: str | None


class DagRunCollection(BaseModel):
    dag_runs: list[DagRunBody]
    total_entries: int


class TaskInstanceBody(BaseModel):
    task_id: str
    task_display_name: str
    dag_id: str
    dag_run_id: str
    execution_date: str
    start_date: str | None
    end_date: str | None
    duration: float | None
    state: str | None
    try_number: int
    map_index: int
    max_tries: int
    hostname: str
    unixname: str
    pool: str
    pool_slots: int
    queue: str | None
    priority_weight: int | None
    operator: str | None
    queued_when: str | None
    pid: int | None
    executor: str | None
    executor_config: str
    sla_miss: dict[str, Any] | None
    rendered_map_index: str | None
    rendered_fields: dict[str, Any]
    trigger: dict[str, Any] | None
    triggerer_job: dict[str, Any] | None
    note: str | None


class TaskInstanceCollection(BaseModel):
    task_instances: list[TaskInstanceBody]
    total_entries: int


class TaskInstanceReference(BaseModel):
    task_id: str
    dag_id: str
    execution_date: str
    dag_run_id: str


class TaskInstanceReferenceCollection(BaseModel):
    task_instances: list[TaskInstanceReference]


class LogBody(BaseModel):
    continuation_token: str | None
    content: str


# ------------------------------------------------------------------- requests


class TriggerDagRun(Strict):
    """POST /dags/{dag_id}/dagRuns. Dates stay strings here so that a naive or garbled one is
    refused in Airflow's words, naming the field."""

    dag_run_id: str | None = None
    logical_date: str | None = None
    execution_date: str | None = None
    data_interval_start: str | None = None
    data_interval_end: str | None = None
    conf: dict[str, Any] | None = None
    note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in _RUN_READ_ONLY:
                if name in data:
                    raise ValueError(f"Property is read-only - '{name}'")
        return data

    @field_validator("conf", mode="before")
    @classmethod
    def _conf_is_object(cls, value: Any) -> Any:
        # Airflow's words; a JSON string is refused too (only the 1.10 API decoded one).
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"{value!r} is not of type 'object' - 'conf'")
        return value


class ListDagRunsForm(Strict):
    order_by: str | None = None
    page_offset: int = Field(0, ge=0)
    page_limit: int = Field(100, ge=1)
    dag_ids: list[str] | None = None
    states: list[str] | None = None
    execution_date_gte: str | None = None
    execution_date_lte: str | None = None
    start_date_gte: str | None = None
    start_date_lte: str | None = None
    end_date_gte: str | None = None
    end_date_lte: str | None = None


class UpdateDagRunState(Strict):
    state: Literal["success", "failed", "queued"]


class ClearDagRun(Strict):
    dry_run: bool = True


class SetDagRunNote(Strict):
    note: str = Field(max_length=1000)


class ListTaskInstanceForm(Strict):
    page_offset: int = Field(0, ge=0)
    page_limit: int = Field(100, ge=1)
    dag_ids: list[str] | None = None
    dag_run_ids: list[str] | None = None
    task_ids: list[str] | None = None
    execution_date_gte: str | None = None
    execution_date_lte: str | None = None
    start_date_gte: str | None = None
    start_date_lte: str | None = None
    end_date_gte: str | None = None
    end_date_lte: str | None = None
    duration_gte: float | None = None
    duration_lte: float | None = None
    state: list[str | None] | None = None
    pool: list[str] | None = None
    queue: list[str] | None = None
    executor: list[str] | None = None


class UpdateTaskInstance(Strict):
    dry_run: bool = True
    new_state: Literal["success", "failed", "skipped"]


class UpdateTaskInstancesState(Strict):
    dry_run: bool = True
    task_id: str
    execution_date: str | None = None
    dag_run_id: str | None = None
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False
    new_state: Literal["success", "failed", "skipped"]


class ClearTaskInstances(Strict):
    dry_run: bool = True
    # A task id, or [task_id, map_index] for one instance of a mapped task (Airflow 2.5+).
    task_ids: list[str | tuple[str, int]] | None = Field(None, min_length=1)
    start_date: str | None = None
    end_date: str | None = None
    only_failed: bool = True
    only_running: bool = False
    include_subdags: bool = False
    include_parentdag: bool = False
    reset_dag_runs: bool = True
    dag_run_id: str | None = None
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False


# ------------------------------------------------------------------- conversions


def dag_run_body(run: Run) -> DagRunBody:
    logical = iso(run.logical_date)
    return DagRunBody(
        dag_run_id=run.run_id,
        dag_id=run.dag_id,
        logical_date=logical,
        execution_date=logical,
        start_date=iso(run.start_date),
        end_date=iso(run.end_date),
        data_interval_start=iso(run.data_interval_start),
        data_interval_end=iso(run.data_interval_end),
        last_scheduling_decision=None,
        run_type=run.run_type.value,
        state=run.state.value,
        external_trigger=run.external_trigger,
        conf=dict(run.conf),
        note=run.note,
    )


def task_instance_body(ti: TaskInstance, run: Run) -> TaskInstanceBody:
    duration = None
    if ti.start_date is not None and ti.end_date is not None:
        duration = (ti.end_date - ti.start_date).total_seconds()
    return TaskInstanceBody(
        task_id=ti.task_id,
        task_display_name=ti.task_id,
        dag_id=ti.dag_id,
        dag_run_id=ti.run_id,
        execution_date=iso(run.logical_date) or "",
        start_date=iso(ti.start_date),
        end_date=iso(ti.end_date),
        duration=duration,
        # Airflow 2.7+ writes no state as null ("none" is deprecated).
        state=None if ti.state is TaskState.NONE else ti.state.value,
        try_number=ti.try_number,
        map_index=ti.map_index,
        max_tries=ti.max_tries,
        hostname=ti.hostname or "",
        unixname="",
        pool=ti.pool,
        pool_slots=ti.pool_slots,
        queue=ti.queue,
        priority_weight=ti.priority_weight,
        operator=ti.operator,
        queued_when=iso(ti.queued_at),
        pid=ti.pid,
        executor=None,
        executor_config="{}",
        sla_miss=None,
        rendered_map_index=None,
        rendered_fields={},
        trigger=None,
        triggerer_job=None,
        note=None,
    )


def reference(ti: TaskInstance, run: Run) -> TaskInstanceReference:
    return TaskInstanceReference(
        task_id=ti.task_id,
        dag_id=ti.dag_id,
        execution_date=iso(run.logical_date) or "",
        dag_run_id=ti.run_id,
    )
