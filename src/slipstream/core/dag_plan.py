"""DagPlan: the scheduler's view of one DAG version, read from its serialized structure.

This is all the core knows of user code: task ids, edges, trigger rules and retry policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slipstream.core.mapping import referenced_tasks
from slipstream.core.setup_teardown import indirect_setups, outcome_leaves, setup_scopes

_CALLED_BY_A_TRY = frozenset({"on_execute_callback", "on_success_callback"})


@dataclass(frozen=True, slots=True)
class TaskSpec:
    task_id: str
    operator: str
    upstream: tuple[str, ...]
    downstream: tuple[str, ...]
    trigger_rule: str = "all_success"
    retries: int = 0
    retry_delay: float = 300.0
    retry_exponential_backoff: bool = False
    max_retry_delay: float | None = None
    execution_timeout: float | None = None
    queue: str = "default"
    pool: str = "default_pool"
    priority_weight: int = 1
    is_setup: bool = False
    is_teardown: bool = False
    on_failure_fail_dagrun: bool = False
    # Callback arguments the task has (on_failure_callback..., email_on_failure when it has an
    # address): which of them a lost try's end must have run for it.
    callbacks: frozenset[str] = frozenset()
    # Enforced at dispatch and planning (core/admission.py, core/past.py).
    pool_slots: int = 1
    priority_weight_total: int = 1  # own weight plus its weight_rule's relatives'
    max_active_tis_per_dag: int | None = None
    max_active_tis_per_dagrun: int | None = None
    depends_on_past: bool = False
    wait_for_downstream: bool = False
    ignore_first_depends_on_past: bool = True
    start_date: str | None = None  # the task's own dates (ISO), when it has them
    end_date: str | None = None
    mapped: Mapping[str, Any] | None = None  # the expand input (core/mapping.py), if mapped
    # The mapped task group the task is in (its `mapped` is then the group's expand input).
    map_group: str | None = None
    # URIs of the assets the task updates: a success records an event for each.
    outlets: tuple[str, ...] = ()
    # An ExternalTaskMarker's target, as written: dag_id, task_id, logical_date (templates)
    # and recursion_depth (services/external_markers.py).
    external_marker: Mapping[str, Any] | None = None

    @property
    def is_empty(self) -> bool:
        """EmptyOperator does nothing, so the scheduler marks it done without a worker; unless
        it has callbacks that only a try calls (as in Airflow, which then runs it too)."""
        return self.operator == "EmptyOperator" and not self.callbacks & _CALLED_BY_A_TRY


@dataclass(frozen=True, slots=True)
class DagPlan:
    dag_id: str
    version_id: int
    version_hash: str
    fileloc: str
    tasks: Mapping[str, TaskSpec]
    order: tuple[str, ...]  # topological
    roots: tuple[str, ...]
    leaves: tuple[str, ...]
    params: Mapping[str, Any]
    schedule: Mapping[str, Any]
    start_date: str | None
    end_date: str | None
    catchup: bool
    max_active_runs: int
    max_active_tasks: int
    # Setups and teardowns (core/setup_teardown.py); empty for DAGs without them, where
    # outcome_leaves are the leaves.
    outcome_leaves: tuple[str, ...] = ()
    setup_scopes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    indirect_setups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # setup -> the tasks that wait for it indirectly: judged again when it finishes.
    setup_dependents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The DAG's own callbacks: on_success_callback and/or on_failure_callback.
    callbacks: frozenset[str] = frozenset()
    dagrun_timeout: float | None = None  # seconds
    # Read on every plan of a run, so found once: tasks with depends_on_past, tasks with
    # their own start_date or end_date.
    past_dependent: frozenset[str] = frozenset()
    dated: tuple[str, ...] = ()
    mapped: frozenset[str] = frozenset()  # mapped tasks
    # Unmapped tasks whose return value a mapped task expands over: they report its length.
    feeds_mapping: frozenset[str] = frozenset()
    # Mapped task groups (empty for DAGs without them): each group's tasks in topological
    # order, and for each task its upstream tasks of the same group, whose instance of the
    # same map index is the one it depends on and reads (Airflow's depth-first execution).
    map_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    paired_upstream: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # SHA-256 of the DAG file's bytes this version was parsed from (None: not recorded): a
    # worker checks its own copy of the file against it.
    source_sha256: str | None = None

    @classmethod
    def from_structure(
        cls,
        structure: Mapping[str, Any],
        *,
        version_id: int,
        version_hash: str,
        source_sha256: str | None = None,
    ) -> DagPlan:
        tasks: dict[str, TaskSpec] = {}
        for raw in structure["tasks"]:
            tasks[raw["task_id"]] = TaskSpec(
                task_id=raw["task_id"],
                operator=raw.get("operator", "BaseOperator"),
                upstream=tuple(raw.get("upstream", ())),
                downstream=tuple(raw.get("downstream", ())),
                trigger_rule=raw.get("trigger_rule", "all_success"),
                retries=int(raw.get("retries", 0)),
                retry_delay=float(raw.get("retry_delay", 300.0)),
                retry_exponential_backoff=bool(raw.get("retry_exponential_backoff", False)),
                max_retry_delay=raw.get("max_retry_delay"),
                execution_timeout=raw.get("execution_timeout"),
                queue=raw.get("queue", "default"),
                pool=raw.get("pool", "default_pool"),
                priority_weight=int(raw.get("priority_weight", 1)),
                is_setup=bool(raw.get("is_setup", False)),
                is_teardown=bool(raw.get("is_teardown", False)),
                on_failure_fail_dagrun=bool(raw.get("on_failure_fail_dagrun", False)),
                callbacks=frozenset(raw.get("callbacks", ())),
                pool_slots=int(raw.get("pool_slots", 1)),
                priority_weight_total=int(
                    raw.get("priority_weight_total", raw.get("priority_weight", 1))
                ),
                max_active_tis_per_dag=raw.get("max_active_tis_per_dag"),
                max_active_tis_per_dagrun=raw.get("max_active_tis_per_dagrun"),
                depends_on_past=bool(raw.get("depends_on_past", False)),
                wait_for_downstream=bool(raw.get("wait_for_downstream", False)),
                ignore_first_depends_on_past=bool(raw.get("ignore_first_depends_on_past", True)),
                start_date=raw.get("start_date"),
                end_date=raw.get("end_date"),
                mapped=raw.get("mapped"),
                map_group=raw.get("map_group"),
                outlets=tuple(str(o["uri"]) for o in raw.get("outlets", ())),
                external_marker=raw.get("external_marker"),
            )
        mapped = frozenset(t for t, spec in tasks.items() if spec.mapped is not None)
        fed = {u for t in mapped for u in referenced_tasks(tasks[t].mapped or {})}
        order = tuple(raw["task_id"] for raw in structure["tasks"])
        leaves = tuple(t for t in order if not tasks[t].downstream)
        roles = _setup_teardown_fields(tasks, order) if _has_roles(tasks) else {}
        return cls(
            dag_id=structure["dag_id"],
            version_id=version_id,
            version_hash=version_hash,
            fileloc=structure.get("fileloc", ""),
            tasks=tasks,
            order=order,
            roots=tuple(t for t in order if not tasks[t].upstream),
            leaves=leaves,
            params=structure.get("params", {}),
            # Timetable.to_spec() form; no schedule is {"type": "none"}, what serialize writes.
            schedule=structure.get("schedule") or {"type": "none"},
            start_date=structure.get("start_date"),
            end_date=structure.get("end_date"),
            catchup=bool(structure.get("catchup", False)),
            max_active_runs=int(structure.get("max_active_runs", 16)),
            max_active_tasks=int(structure.get("max_active_tasks", 16)),
            outcome_leaves=roles.get("outcome_leaves", leaves),
            setup_scopes=roles.get("setup_scopes", {}),
            indirect_setups=roles.get("indirect_setups", {}),
            setup_dependents=roles.get("setup_dependents", {}),
            callbacks=frozenset(structure.get("callbacks", ())),
            dagrun_timeout=structure.get("dagrun_timeout"),
            past_dependent=frozenset(t for t in order if tasks[t].depends_on_past),
            dated=tuple(t for t in order if tasks[t].start_date or tasks[t].end_date),
            mapped=mapped,
            feeds_mapping=frozenset(fed - mapped),
            source_sha256=source_sha256,
            **_map_group_fields(tasks, order),
        )


def _map_group_fields(tasks: Mapping[str, TaskSpec], order: tuple[str, ...]) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for task_id in order:
        group = tasks[task_id].map_group
        if group is not None:
            groups.setdefault(group, []).append(task_id)
    if not groups:
        return {}
    paired: dict[str, frozenset[str]] = {}
    for members in groups.values():
        for task_id in members:
            spec = tasks[task_id]
            same = frozenset(u for u in spec.upstream if tasks[u].map_group == spec.map_group)
            if same:
                paired[task_id] = same
    return {
        "map_groups": {group: tuple(members) for group, members in groups.items()},
        "paired_upstream": paired,
    }


def _has_roles(tasks: Mapping[str, TaskSpec]) -> bool:
    return any(spec.is_setup or spec.is_teardown for spec in tasks.values())


def _setup_teardown_fields(tasks: Mapping[str, TaskSpec], order: tuple[str, ...]) -> dict[str, Any]:
    upstream = {t: spec.upstream for t, spec in tasks.items()}
    downstream = {t: spec.downstream for t, spec in tasks.items()}
    setups = {t for t, spec in tasks.items() if spec.is_setup}
    teardowns = {t for t, spec in tasks.items() if spec.is_teardown}
    failing = {t for t in teardowns if tasks[t].on_failure_fail_dagrun}
    scopes = setup_scopes(upstream, downstream, setups, teardowns)
    indirect = indirect_setups(order, upstream, teardowns, scopes)
    dependents: dict[str, list[str]] = {}
    for task_id, waited_for in indirect.items():
        for setup in waited_for:
            dependents.setdefault(setup, []).append(task_id)
    return {
        "outcome_leaves": outcome_leaves(order, downstream, teardowns, failing),
        "setup_scopes": scopes,
        "indirect_setups": indirect,
        "setup_dependents": {setup: tuple(ids) for setup, ids in dependents.items()},
    }
