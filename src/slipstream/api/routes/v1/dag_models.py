"""Airflow 2.10's DAG, DAGDetail, Task and ImportError bodies, and how a stored DAG (its row
plus its version's structure) becomes them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from slipstream.api.routes.v1.common import iso
from slipstream.authoring.timetable_description import timetable_description
from slipstream.core.records import DagRecord, ImportErrorRecord
from slipstream.services.dags import DagView

# Airflow's defaults for things Slipstream has no notion of.
DEFAULT_VIEW = "grid"
ORIENTATION = "LR"
UI_COLOR = "#fff"
UI_FGCOLOR = "#000"
PARAM_CLASS = "airflow.models.param.Param"
# Where Slipstream's own operator classes live, by class name; a class a DAG file defines
# carries its module in the serialized task ("operator_module").
OPERATORS_MODULE = "slipstream.authoring.operators"
OPERATOR_MODULES = {
    "_PythonDecoratedOperator": "slipstream.authoring.taskflow",
    "_BranchPythonDecoratedOperator": "slipstream.authoring.taskflow",
    "_ShortCircuitDecoratedOperator": "slipstream.authoring.taskflow",
    "_BashDecoratedOperator": "slipstream.authoring.taskflow",
    "LatestOnlyOperator": "slipstream.authoring.latest_only",
    "BranchDayOfWeekOperator": "slipstream.authoring.weekday",
}


class Tag(BaseModel):
    name: str


class Dag(BaseModel):
    """v1.yaml `DAG`."""

    dag_id: str
    dag_display_name: str
    root_dag_id: str | None
    is_paused: bool | None
    is_active: bool | None
    is_subdag: bool
    last_parsed_time: str | None
    last_pickled: str | None
    last_expired: str | None
    scheduler_lock: bool | None
    pickle_id: str | None
    default_view: str | None
    fileloc: str
    file_token: str
    owners: list[str]
    description: str | None
    schedule_interval: dict[str, Any] | None
    timetable_description: str | None
    tags: list[Tag] | None
    max_active_tasks: int | None
    max_active_runs: int | None
    max_consecutive_failed_dag_runs: int | None
    has_task_concurrency_limits: bool | None
    has_import_errors: bool | None
    next_dagrun: str | None
    next_dagrun_data_interval_start: str | None
    next_dagrun_data_interval_end: str | None
    next_dagrun_create_after: str | None


DAG_FIELDS = frozenset(Dag.model_fields)


class DagCollection(BaseModel):
    dags: list[Dag]
    total_entries: int


class DagDetail(Dag):
    """v1.yaml `DAGDetail`: a DAG plus what only its parsed structure knows."""

    timezone: str | None
    catchup: bool | None
    orientation: str | None
    concurrency: float | None
    start_date: str | None
    dag_run_timeout: dict[str, Any] | None
    dataset_expression: dict[str, Any] | None
    doc_md: str | None
    params: dict[str, Any]
    end_date: str | None
    is_paused_upon_creation: bool | None
    last_parsed: str | None
    template_search_path: list[str] | None
    render_template_as_native_obj: bool | None


class ClassReference(BaseModel):
    module_path: str
    class_name: str


class Task(BaseModel):
    """v1.yaml `Task`."""

    class_ref: ClassReference
    task_id: str
    task_display_name: str
    owner: str
    start_date: str | None
    end_date: str | None
    trigger_rule: str
    extra_links: list[dict[str, Any]]
    depends_on_past: bool
    is_mapped: bool
    wait_for_downstream: bool
    retries: float
    queue: str | None
    executor: str | None
    pool: str
    pool_slots: float
    execution_timeout: dict[str, Any] | None
    retry_delay: dict[str, Any] | None
    retry_exponential_backoff: bool
    priority_weight: float
    weight_rule: str
    ui_color: str
    ui_fgcolor: str
    template_fields: list[str]
    sub_dag: Dag | None
    downstream_task_ids: list[str]
    doc_md: str | None


TASK_ORDERABLE = frozenset(
    {
        "task_id",
        "task_display_name",
        "owner",
        "start_date",
        "end_date",
        "trigger_rule",
        "retries",
        "queue",
        "pool",
        "pool_slots",
        "priority_weight",
        "weight_rule",
    }
)


class TaskCollection(BaseModel):
    tasks: list[Task]
    total_entries: int


class ImportError(BaseModel):
    import_error_id: int
    timestamp: str
    filename: str
    stack_trace: str


class ImportErrorCollection(BaseModel):
    import_errors: list[ImportError]
    total_entries: int


def time_delta(seconds: float | None) -> dict[str, Any] | None:
    """Airflow's serialized timedelta."""
    if seconds is None:
        return None
    value = timedelta(seconds=seconds)
    return {
        "__type": "TimeDelta",
        "days": value.days,
        "seconds": value.seconds,
        "microseconds": value.microseconds,
    }


def schedule_interval(spec: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The schedule as Airflow serializes `schedule_interval`: a cron expression (presets kept
    as written, `@once` included), a TimeDelta, or null."""
    kind = (spec or {}).get("type")
    if kind == "once":
        return {"__type": "CronExpression", "value": "@once"}
    if kind == "continuous":
        return {"__type": "CronExpression", "value": "@continuous"}
    if kind in ("assets", "asset_or_time"):  # Airflow 2.10's schedule_interval for these
        return {"__type": "CronExpression", "value": "Dataset"}
    if kind == "cron":
        assert spec is not None
        return {"__type": "CronExpression", "value": spec.get("preset") or spec["expression"]}
    if kind == "delta":
        assert spec is not None
        return time_delta(float(spec["seconds"]))
    return None


def file_token(fileloc: str) -> str:
    """An opaque, stable name for a DAG's file (Airflow signs the path; nothing here reads
    a token back, so a digest is enough)."""
    return hashlib.sha256(fileloc.encode("utf-8")).hexdigest()


def owners(dag: DagRecord) -> list[str]:
    return [owner.strip() for owner in dag.owners.split(",") if owner.strip()]


def dag_body(view: DagView) -> Dag:
    dag, structure = view.dag, view.structure
    spec = structure.get("schedule")
    tasks = structure.get("tasks") or []
    return Dag(
        dag_id=dag.dag_id,
        dag_display_name=dag.dag_id,
        root_dag_id=None,
        is_paused=dag.is_paused,
        is_active=dag.is_active,
        is_subdag=False,
        last_parsed_time=iso(dag.last_parsed_at),
        last_pickled=None,
        last_expired=None,
        scheduler_lock=None,
        pickle_id=None,
        default_view=DEFAULT_VIEW,
        fileloc=dag.fileloc,
        file_token=file_token(dag.fileloc),
        owners=owners(dag),
        description=dag.description,
        schedule_interval=schedule_interval(spec),
        timetable_description=timetable_description(spec) if structure else None,
        tags=[Tag(name=tag) for tag in dag.tags],
        max_active_tasks=dag.max_active_tasks,
        max_active_runs=dag.max_active_runs,
        max_consecutive_failed_dag_runs=0,
        has_task_concurrency_limits=any(t.get("max_active_tis_per_dag") is not None for t in tasks),
        has_import_errors=view.has_import_errors,
        next_dagrun=iso(dag.next_dagrun_data_interval_start),
        next_dagrun_data_interval_start=iso(dag.next_dagrun_data_interval_start),
        next_dagrun_data_interval_end=iso(dag.next_dagrun_data_interval_end),
        next_dagrun_create_after=iso(dag.next_dagrun_create_after),
    )


def _date(raw: str | None) -> str | None:
    """A structure's stored date, in the API's form."""
    return None if raw is None else iso(datetime.fromisoformat(raw))


def params_body(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Declared params as Airflow's `Param.dump()` shows them."""
    return {
        name: {
            "__class": PARAM_CLASS,
            "value": entry.get("default"),
            "description": entry.get("description"),
            "schema": entry.get("schema") or {},
        }
        for name, entry in spec.items()
    }


def dag_detail_body(view: DagView) -> DagDetail:
    structure = view.structure
    base = dag_body(view)
    return DagDetail(
        **base.model_dump(),
        timezone="UTC",
        catchup=structure.get("catchup"),
        orientation=ORIENTATION,
        concurrency=view.dag.max_active_tasks,
        start_date=_date(structure.get("start_date")),
        dag_run_timeout=time_delta(structure.get("dagrun_timeout")),
        dataset_expression=None,
        doc_md=structure.get("doc_md"),
        params=params_body(structure.get("params") or {}),
        end_date=_date(structure.get("end_date")),
        is_paused_upon_creation=structure.get("is_paused_upon_creation"),
        last_parsed=iso(view.dag.last_parsed_at),
        template_search_path=None,
        render_template_as_native_obj=False,
    )


def task_body(spec: Mapping[str, Any], structure: Mapping[str, Any]) -> Task:
    operator = str(spec.get("operator") or "BaseOperator")
    return Task(
        class_ref=ClassReference(
            module_path=spec.get("operator_module")
            or OPERATOR_MODULES.get(operator, OPERATORS_MODULE),
            class_name=operator,
        ),
        task_id=spec["task_id"],
        task_display_name=spec["task_id"],
        owner=spec.get("owner") or structure.get("owner") or "airflow",
        start_date=_date(structure.get("start_date")),
        end_date=_date(structure.get("end_date")),
        trigger_rule=spec.get("trigger_rule") or "all_success",
        extra_links=[],
        depends_on_past=bool(spec.get("depends_on_past")),
        is_mapped=spec.get("mapped") is not None,
        wait_for_downstream=bool(spec.get("wait_for_downstream")),
        retries=spec.get("retries") or 0,
        queue=spec.get("queue"),
        executor=None,
        pool=spec.get("pool") or "default_pool",
        pool_slots=spec.get("pool_slots") or 1,
        execution_timeout=time_delta(spec.get("execution_timeout")),
        retry_delay=time_delta(spec.get("retry_delay")),
        retry_exponential_backoff=bool(spec.get("retry_exponential_backoff")),
        priority_weight=spec.get("priority_weight") or 1,
        weight_rule=spec.get("weight_rule") or "downstream",
        ui_color=UI_COLOR,
        ui_fgcolor=UI_FGCOLOR,
        template_fields=list(spec.get("template_fields") or []),
        sub_dag=None,
        downstream_task_ids=list(spec.get("downstream") or []),
        doc_md=spec.get("doc_md"),
    )


def import_error_body(error: ImportErrorRecord) -> ImportError:
    return ImportError(
        import_error_id=error.id,
        timestamp=iso(error.timestamp) or "",
        filename=error.filename,
        stack_trace=error.stacktrace,
    )
