"""A DAG as JSON-able data, and its content hash: all the core and scheduler ever see of user code.

The structure is deterministic (sorted where Python order is incidental), so two builds of the
same DAG file hash the same and any change to what the scheduler sees changes the hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from slipstream.authoring.callbacks import DAG_CALLBACKS, TASK_CALLBACKS, present
from slipstream.authoring.dag import DAG
from slipstream.authoring.external_task import ExternalTaskMarker
from slipstream.authoring.mapped_task_group import MappedTaskGroup, mapped_group_of
from slipstream.authoring.params import serialize_params
from slipstream.authoring.task import BaseOperator
from slipstream.authoring.task_group import TaskGroup
from slipstream.authoring.weights import priority_totals
from slipstream.errors import DagDefinitionError

# Longest template field value kept as written, for the UI (a whole SQL script is not needed).
TEMPLATE_VALUE_CHARS = 10_000
# Keys of a task's structure that are for people to read only: left out of the version hash,
# so a value computed while the file is parsed (a date, say) does not make a new version on
# every parse, and versions stored before the key existed keep their hash. The file's text is
# in the version hash anyway.
DISPLAY_ONLY_TASK_KEYS = frozenset({"template_values"})


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def serialize_task(task: BaseOperator) -> dict[str, Any]:
    module = type(task).__module__
    shape: dict[str, Any] = {
        "task_id": task.task_id,
        "operator": type(task).__name__,
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
        "trigger_rule": str(task.trigger_rule),
        "retries": task.retries,
        "retry_delay": task.retry_delay.total_seconds(),
        "retry_exponential_backoff": task.retry_exponential_backoff,
        "max_retry_delay": _seconds(task.max_retry_delay),
        "execution_timeout": _seconds(task.execution_timeout),
        "queue": task.queue,
        "pool": task.pool,
        "pool_slots": task.pool_slots,
        "priority_weight": task.priority_weight,
        "owner": task.owner,
        "doc_md": task.doc_md,
        "template_fields": list(task.template_fields),
        # Beyond the base shape: Airflow scheduling semantics the scheduler may honour.
        "weight_rule": task.weight_rule,
        "depends_on_past": task.depends_on_past,
        "wait_for_downstream": task.wait_for_downstream,
        "max_active_tis_per_dag": task.max_active_tis_per_dag,
        "max_active_tis_per_dagrun": task.max_active_tis_per_dagrun,
        "ignore_first_depends_on_past": task.ignore_first_depends_on_past,
        "start_date": _iso(task.start_date),
        "end_date": _iso(task.end_date),
        # What a try's end may have to run when its own process could not (killed, lost).
        "callbacks": _task_callbacks(task),
        # A task's own params, checked here as the DAG's are (absent when it has none).
        **({"params": _task_params(task)} if task.params else {}),
    }
    # Setup/teardown roles only where set, so DAGs without them keep their structure (and hash).
    if not module.startswith("slipstream."):
        # An operator class the DAG file defines: the API names its module, as Airflow does;
        # built-in classes are known by name, so their DAGs keep their hash.
        shape["operator_module"] = module
    # Always present (even empty), so the UI can tell "not set" from "not recorded" (a
    # version stored before the key existed).
    shape["template_values"] = _template_values(task)
    if isinstance(task, ExternalTaskMarker):
        shape["external_marker"] = task.marker_spec()
    if task.outlets:
        # Only tasks with outlets carry the key, so other DAGs keep their version hashes.
        shape["outlets"] = [asset.describe() for asset in task.outlets]
    if task.is_setup:
        shape["is_setup"] = True
    if task.is_teardown:
        shape["is_teardown"] = True
        shape["on_failure_fail_dagrun"] = task.on_failure_fail_dagrun
    if task.expand_input is not None:
        # Only mapped tasks carry the key, so unmapped DAGs keep their version hashes.
        shape["mapped"] = task.expand_input.serialize()
    group = mapped_group_of(task)
    if group is not None:
        # A task in a mapped group expands with the group; an upstream task of the same group
        # hands on the value of the same map index (core/dag_plan.py: paired_upstream).
        shape["mapped"] = group.expand_input.serialize()
        shape["map_group"] = group.group_id
    return shape


def _template_values(task: BaseOperator) -> dict[str, str]:
    """Each template field's value as written in the DAG file, before any rendering, as text
    for the UI (Slipstream does not store rendered values); empty ones left out."""
    values: dict[str, str] = {}
    for name in task.template_fields:
        value = getattr(task, name, None)
        if value is None or (isinstance(value, str | dict | list | tuple) and not value):
            continue
        values[name] = (value if isinstance(value, str) else _as_text(value))[:TEMPLATE_VALUE_CHARS]
    return values


def _as_text(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):  # keys that do not sort, a value that contains itself
        return repr(value)


def serialize_task_group(group: TaskGroup) -> dict[str, Any]:
    """The group tree for the UI: each group with its children in definition order (tasks as
    {"task_id": ...}, groups nested), and what is wired to it as a whole."""
    children: list[dict[str, Any]] = [
        serialize_task_group(child) if isinstance(child, TaskGroup) else {"task_id": child.task_id}
        for child in group.children.values()
    ]
    parent = group.parent_group
    mapped = (
        {"mapped": group.expand_input.serialize()} if isinstance(group, MappedTaskGroup) else {}
    )
    return {
        **mapped,
        "group_id": group.group_id,
        "label": group.label,
        "parent_group_id": parent.group_id if parent is not None else None,
        "prefix_group_id": group.prefix_group_id,
        "tooltip": group.tooltip,
        "ui_color": group.ui_color,
        "ui_fgcolor": group.ui_fgcolor,
        "children": children,
        "upstream_group_ids": sorted(group.upstream_group_ids),
        "downstream_group_ids": sorted(group.downstream_group_ids),
        "upstream_task_ids": sorted(group.upstream_task_ids),
        "downstream_task_ids": sorted(group.downstream_task_ids),
    }


def _edge_info(dag: DAG) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        upstream: {downstream: dict(info) for downstream, info in sorted(targets.items())}
        for upstream, targets in sorted(dag.edge_info.items())
    }


def _task_callbacks(task: BaseOperator) -> list[str]:
    names = present(task, TASK_CALLBACKS)
    if task.email:
        names += [n for n in ("email_on_failure", "email_on_retry") if getattr(task, n)]
    return names


def _task_params(task: BaseOperator) -> dict[str, Any]:
    try:
        return serialize_params(task.params)
    except DagDefinitionError as exc:
        raise DagDefinitionError(f"task {task.task_id!r}: {exc}", dag_id=task.dag_id) from None


def serialize_dag(dag: DAG) -> dict[str, Any]:
    """Validate `dag`, then describe it as plain JSON-able data."""
    dag.validate()
    structure: dict[str, Any] = {
        "dag_id": dag.dag_id,
        "fileloc": dag.fileloc,
        "description": dag.description,
        "doc_md": dag.doc_md,
        "tags": sorted(dag.tags),
        "owner": dag.owner,
        "schedule": dag.timetable.to_spec(),
        "schedule_summary": dag.timetable.summary,
        "start_date": _iso(dag.start_date),
        "end_date": _iso(dag.end_date),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "dagrun_timeout": _seconds(dag.dagrun_timeout),
        "is_paused_upon_creation": dag.is_paused_upon_creation,
        "params": dag.params_spec,
        "callbacks": present(dag, DAG_CALLBACKS),
        "tasks": _tasks(dag),
    }
    # Only DAGs that have groups or edge labels carry them, so others keep their hash.
    if dag.task_group_dict:
        structure["task_group"] = serialize_task_group(dag.task_group)
    if dag.edge_info:
        structure["edge_info"] = _edge_info(dag)
    return structure


def _tasks(dag: DAG) -> list[dict[str, Any]]:
    ordered = dag.topological_order()
    totals = priority_totals(ordered)
    tasks = []
    for task in ordered:
        spec = serialize_task(task)
        # What the scheduler orders queued work by (Airflow's priority_weight_total).
        spec["priority_weight_total"] = totals[task.task_id]
        tasks.append(spec)
    return tasks


def structure_hash(structure: Mapping[str, Any]) -> str:
    """sha256 hex digest of the canonical JSON of `structure` (sorted keys, no whitespace),
    without the tasks' display-only keys."""
    hashed = dict(structure)
    if "tasks" in hashed:
        hashed["tasks"] = [
            {key: value for key, value in task.items() if key not in DISPLAY_ONLY_TASK_KEYS}
            for task in hashed["tasks"]
        ]
    canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
