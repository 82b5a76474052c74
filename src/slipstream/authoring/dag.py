"""DAG: a named graph of tasks with its schedule and run settings, and the @dag decorator.

A DAG checks what it can the moment it is told (ids, schedule, default_args, params) and the
rest (cycles) when its `with` block or @dag function ends, or when it is serialized.
"""

from __future__ import annotations

import functools
import heapq
import inspect
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, overload

from slipstream.authoring.callbacks import checked_callback, warn_sla
from slipstream.authoring.dag_context import collect_dags, enter_dag, exit_dag, record_dag
from slipstream.authoring.mapped_task_group import check_mapped_groups
from slipstream.authoring.params import NOTSET, ArgNotSet, DagParam, Param, serialize_params
from slipstream.authoring.schedules import Timetable, as_utc, timetable_from_schedule
from slipstream.authoring.task import (
    BaseOperator,
    as_duration,
    known_operator_arguments,
    validate_key,
)
from slipstream.authoring.task_group import TaskGroup
from slipstream.authoring.templating import make_environment
from slipstream.authoring.trigger_rules import TriggerRule
from slipstream.errors import (
    CycleError,
    DagDefinitionError,
    DuplicateTaskIdError,
    TaskNotFound,
    UnknownArgumentError,
)

if TYPE_CHECKING:
    from contextvars import Token

    import jinja2

__all__ = ["DAG", "collect_dags", "dag"]

ScheduleArg = str | timedelta | Timetable | None


def _caller_file() -> str:
    """The file of the first frame outside slipstream.authoring: the DAG file, normally."""
    frame: FrameType | None = inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        "slipstream.authoring"
    ):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else ""


def _as_date(value: object, name: str, dag_id: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise DagDefinitionError(
            f"{name} must be a datetime, not {type(value).__name__}", dag_id=dag_id
        )
    return as_utc(value)


def _positive(value: object, name: str, dag_id: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DagDefinitionError(f"{name} must be a positive integer, not {value!r}", dag_id=dag_id)
    return value


class DAG:
    """A DAG of tasks. Use as `with DAG(...) as dag:` (tasks created inside join it) or
    through @dag. `schedule_interval` is the Airflow 2 name of `schedule`."""

    def __init__(
        self,
        dag_id: str,
        description: str | None = None,
        *,
        schedule: ScheduleArg | ArgNotSet = NOTSET,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        catchup: bool = False,
        tags: Collection[str] | None = None,
        doc_md: str | None = None,
        params: Mapping[str, Any] | None = None,
        default_args: Mapping[str, Any] | None = None,
        max_active_runs: int = 16,
        max_active_tasks: int = 16,
        dagrun_timeout: timedelta | float | None = None,
        is_paused_upon_creation: bool | None = None,
        render_template_as_native_obj: bool = False,
        user_defined_macros: Mapping[str, Any] | None = None,
        user_defined_filters: Mapping[str, Callable[..., Any]] | None = None,
        jinja_environment_kwargs: Mapping[str, Any] | None = None,
        template_searchpath: str | Sequence[str] | None = None,
        schedule_interval: ScheduleArg | ArgNotSet = NOTSET,
        timetable: Timetable | ArgNotSet = NOTSET,
        fileloc: str | None = None,
        # Run by the scheduler's executor when a run ends (runner/callbacks.py).
        on_success_callback: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
        on_failure_callback: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
        sla_miss_callback: Callable[..., Any] | None = None,
        access_control: Mapping[str, Any] | None = None,
        owner_links: Mapping[str, str] | None = None,
        default_view: str | None = None,
        orientation: str | None = None,
        dag_display_name: str | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.dag_id = validate_key("dag_id", dag_id)
        self.fileloc = fileloc if fileloc is not None else _caller_file()
        self.description = description
        self.doc_md = doc_md
        if not isinstance(schedule, ArgNotSet) and not isinstance(schedule_interval, ArgNotSet):
            raise DagDefinitionError(
                "give either schedule or schedule_interval, not both", dag_id=dag_id
            )
        if not isinstance(timetable, ArgNotSet):
            # Airflow 2's timetable= argument: one more spelling of the schedule.
            if not (isinstance(schedule, ArgNotSet) and isinstance(schedule_interval, ArgNotSet)):
                raise DagDefinitionError(
                    "give only one of schedule, schedule_interval and timetable", dag_id=dag_id
                )
            schedule = timetable
        chosen = schedule_interval if isinstance(schedule, ArgNotSet) else schedule
        self.schedule: ScheduleArg = None if isinstance(chosen, ArgNotSet) else chosen
        # The DAG's timezone is its start_date's, as in Airflow; cron is evaluated in it.
        given_start = (
            start_date if start_date is not None else (default_args or {}).get("start_date")
        )
        self.timezone: tzinfo = (
            given_start.tzinfo if isinstance(given_start, datetime) and given_start.tzinfo else UTC
        )
        self.timetable = timetable_from_schedule(
            self.schedule, dag_id=dag_id, timezone=self.timezone
        )

        self.default_args: dict[str, Any] = dict(default_args or {})
        unknown = sorted(set(self.default_args) - {"params"} - known_operator_arguments())
        if unknown:
            raise UnknownArgumentError(unknown[0], "default_args", dag_id=dag_id)
        # Airflow moves default_args["params"] into the DAG's params (and lets it win).
        merged_params = {**(params or {}), **self.default_args.pop("params", {})}
        self.params: dict[str, Param] = {
            name: value if isinstance(value, Param) else Param(value)
            for name, value in merged_params.items()
        }
        try:
            self.params_spec = serialize_params(self.params)
        except DagDefinitionError as exc:
            raise DagDefinitionError(str(exc), dag_id=dag_id) from None

        # As in Airflow 2, default_args may carry the dates for the whole DAG.
        self.start_date = _as_date(
            start_date if start_date is not None else self.default_args.get("start_date"),
            "start_date",
            dag_id,
        )
        self.end_date = _as_date(
            end_date if end_date is not None else self.default_args.get("end_date"),
            "end_date",
            dag_id,
        )
        self.catchup = bool(catchup)
        if tags is not None and (
            isinstance(tags, str) or not all(isinstance(t, str) for t in tags)
        ):
            raise DagDefinitionError("tags must be a list of strings", dag_id=dag_id)
        self.tags: list[str] = list(tags or [])
        self.max_active_runs = _positive(max_active_runs, "max_active_runs", dag_id)
        if self.timetable.is_continuous and self.max_active_runs != 1:
            raise DagDefinitionError(
                f"invalid max_active_runs {self.max_active_runs}: ContinuousTimetable "
                "(@continuous) requires max_active_runs=1",
                dag_id=dag_id,
            )
        # concurrency is Airflow's older name for max_active_tasks.
        tasks_limit = concurrency if concurrency is not None else max_active_tasks
        self.max_active_tasks = _positive(tasks_limit, "max_active_tasks", dag_id)
        self.dagrun_timeout = as_duration(dagrun_timeout, "dagrun_timeout", f"DAG {dag_id!r}")
        self.is_paused_upon_creation = is_paused_upon_creation
        self.render_template_as_native_obj = render_template_as_native_obj
        self.user_defined_macros = dict(user_defined_macros or {})
        self.user_defined_filters = dict(user_defined_filters or {})
        self.jinja_environment_kwargs = dict(jinja_environment_kwargs or {})
        searchpath = (
            [template_searchpath] if isinstance(template_searchpath, str) else template_searchpath
        )
        self.template_searchpath: list[str] = list(searchpath or [])
        owner = f"DAG {dag_id!r}"
        self.on_success_callback = checked_callback(
            on_success_callback, "on_success_callback", owner
        )
        self.on_failure_callback = checked_callback(
            on_failure_callback, "on_failure_callback", owner
        )
        self.sla_miss_callback = checked_callback(sla_miss_callback, "sla_miss_callback", owner)
        if sla_miss_callback is not None:
            warn_sla("sla_miss_callback", owner)
        if access_control:
            # Airflow grants the named roles permissions on this DAG when it parses the file;
            # Slipstream does not change roles from DAG files, so the grant would not happen.
            raise DagDefinitionError(
                "access_control is not supported: grant roles permissions on "
                f"'DAG:{dag_id}' with `slipstream roles` or the API instead",
                dag_id=dag_id,
            )
        self.access_control = access_control
        self.owner_links = dict(owner_links or {})
        self.default_view = default_view
        self.orientation = orientation
        self.dag_display_name = dag_display_name or dag_id

        self.task_dict: dict[str, BaseOperator] = {}
        # Every task belongs to a group; top-level ones to this root group (no id).
        self.task_group = TaskGroup.root(self)
        # {upstream id: {downstream id: {"label": ...}}}, as Airflow's edge_info (edge labels).
        self.edge_info: dict[str, dict[str, dict[str, Any]]] = {}
        self._tokens: list[Token[DAG | None]] = []
        self._template_env: jinja2.Environment | None = None
        record_dag(self)

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"

    # -- the with block ----------------------------------------------------------------------

    def __enter__(self) -> DAG:
        self._tokens.append(enter_dag(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        exit_dag(self._tokens.pop())
        if exc_type is None:
            self.validate()

    # -- tasks --------------------------------------------------------------------------------

    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def get_task(self, task_id: str) -> BaseOperator:
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise TaskNotFound(self.dag_id, task_id) from None

    def add_task(self, task: BaseOperator) -> None:
        """Register `task` (BaseOperator does this when given or finding this DAG)."""
        existing = self.task_dict.get(task.task_id)
        if existing is task:
            return
        if existing is not None:
            raise DuplicateTaskIdError(self.dag_id, task.task_id)
        if self.task_group.is_group_id(task.task_id):
            raise DagDefinitionError(
                f"task_id {task.task_id!r} is already used by a task group in DAG {self.dag_id!r}",
                dag_id=self.dag_id,
            )
        group = task.task_group or self.task_group
        if group.dag is not self:
            raise DagDefinitionError(
                f"task {task.task_id!r} is in task group {group.group_id!r} of another DAG",
                dag_id=self.dag_id,
            )
        group.add(task)
        self.task_dict[task.task_id] = task

    def add_tasks(self, tasks: Sequence[BaseOperator]) -> None:
        for task in tasks:
            task.dag = self

    @property
    def task_group_dict(self) -> dict[str, TaskGroup]:
        """Every task group of the DAG (not the root) by its full group id."""
        groups = self.task_group.get_task_group_dict()
        return {group_id: group for group_id, group in groups.items() if group_id is not None}

    def set_edge_info(self, upstream_id: str, downstream_id: str, info: dict[str, Any]) -> None:
        """Attach `info` (an edge label: {"label": ...}) to the edge between two nodes."""
        self.edge_info.setdefault(upstream_id, {})[downstream_id] = info

    def get_edge_info(self, upstream_id: str, downstream_id: str) -> dict[str, Any]:
        return self.edge_info.get(upstream_id, {}).get(downstream_id, {})

    @property
    def roots(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t.downstream_task_ids]

    @property
    def owner(self) -> str:
        """The distinct owners of its tasks, comma-joined (sorted, so it is stable)."""
        owners = sorted({t.owner for t in self.task_dict.values()})
        return ", ".join(owners) if owners else str(self.default_args.get("owner", "airflow"))

    @property
    def folder(self) -> str:
        return os.path.dirname(self.fileloc)

    def param(self, name: str) -> DagParam:
        """A reference to param `name` that resolves to the run's value when a task runs."""
        if name not in self.params:
            raise KeyError(f"DAG {self.dag_id!r} has no param {name!r}")
        return DagParam(name)

    # -- structure ----------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise DagDefinitionError if the graph cannot be run: a relative outside the DAG, or a
        cycle (CycleError lists the tasks on it, in dependency order)."""
        for task in self.task_dict.values():
            for relative in (*task.upstream_list, *task.downstream_list):
                if self.task_dict.get(relative.task_id) is not relative:
                    raise DagDefinitionError(
                        f"task {task.task_id!r} depends on {relative.task_id!r}, "
                        "which is not in this DAG",
                        dag_id=self.dag_id,
                    )
        cycle = self._find_cycle()
        if cycle:
            raise CycleError(self.dag_id, cycle)
        self._validate_setups()
        check_mapped_groups(self)

    def _validate_setups(self) -> None:
        # Airflow's rule: clearing work must be able to rerun its setups, so work right after
        # a setup must wait for it to succeed.
        for task in self.task_dict.values():
            if not task.is_setup:
                continue
            for down in task.downstream_list:
                if not down.is_teardown and down.trigger_rule != TriggerRule.ALL_SUCCESS:
                    raise DagDefinitionError(
                        f"task {down.task_id!r} follows setup task {task.task_id!r}, so its "
                        f"trigger_rule must be all_success, not {down.trigger_rule.value!r}",
                        dag_id=self.dag_id,
                    )

    def _find_cycle(self) -> list[str]:
        # Iterative depth-first search; "on_path" holds the grey nodes, in order.
        done: set[str] = set()
        for root in self.task_dict:
            if root in done:
                continue
            on_path: list[str] = [root]
            on_path_set = {root}  # the same nodes, for O(1) membership on long chains
            iterators = [iter(sorted(self.task_dict[root].downstream_task_ids))]
            while iterators:
                child = next(iterators[-1], None)
                if child is None:
                    finished = on_path.pop()
                    on_path_set.discard(finished)
                    done.add(finished)
                    iterators.pop()
                elif child in on_path_set:
                    return on_path[on_path.index(child) :]
                elif child not in done:
                    on_path.append(child)
                    on_path_set.add(child)
                    iterators.append(iter(sorted(self.task_dict[child].downstream_task_ids)))
        return []

    def topological_order(self) -> list[BaseOperator]:
        """Tasks with every task after its upstream ones; ties keep definition order."""
        position = {task_id: index for index, task_id in enumerate(self.task_dict)}
        waiting = {t.task_id: len(t.upstream_task_ids) for t in self.task_dict.values()}
        ready = [position[task_id] for task_id, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        ids = list(self.task_dict)
        ordered: list[BaseOperator] = []
        while ready:
            task = self.task_dict[ids[heapq.heappop(ready)]]
            ordered.append(task)
            for child in task.downstream_task_ids:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, position[child])
        if len(ordered) != len(self.task_dict):
            self.validate()  # raises the CycleError that explains the leftovers
        return ordered

    # -- templates ----------------------------------------------------------------------------

    def get_template_env(self) -> jinja2.Environment:
        """The Jinja environment for this DAG's tasks (built once, on first use)."""
        if self._template_env is None:
            self._template_env = make_environment(
                native=self.render_template_as_native_obj,
                searchpath=[self.folder, *self.template_searchpath],
                user_defined_macros=self.user_defined_macros,
                user_defined_filters=self.user_defined_filters,
                jinja_environment_kwargs=self.jinja_environment_kwargs,
            )
        return self._template_env


@overload
def dag(dag_id: Callable[..., Any], /) -> Callable[..., DAG]: ...
@overload
def dag(
    dag_id: str | None = None, /, **dag_kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., DAG]]: ...
def dag(
    dag_id: str | Callable[..., Any] | None = None, /, **dag_kwargs: Any
) -> Callable[..., DAG] | Callable[[Callable[..., Any]], Callable[..., DAG]]:
    """@dag / @dag(...): calling the decorated function builds and returns the DAG.

    The dag_id defaults to the function name and doc_md to its docstring; the function's own
    parameters become DAG params (their defaults, or the values the call passes) and, inside
    the function, stand for the run's value of that param.
    """
    if callable(dag_id):
        return _dag_factory(dag_id, None, {})
    name = dag_kwargs.pop("dag_id", dag_id)

    def decorate(function: Callable[..., Any]) -> Callable[..., DAG]:
        return _dag_factory(function, name, dag_kwargs)

    return decorate


def _dag_factory(
    function: Callable[..., Any], dag_id: str | None, dag_kwargs: Mapping[str, Any]
) -> Callable[..., DAG]:
    signature = inspect.signature(function)
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)

    @functools.wraps(function)
    def factory(*args: Any, **kwargs: Any) -> DAG:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        function_params = {
            name: value
            for name, value in bound.arguments.items()
            if signature.parameters[name].kind not in variadic
        }
        options = dict(dag_kwargs)
        options["params"] = {**(options.get("params") or {}), **function_params}
        code = getattr(function, "__code__", None)
        options.setdefault("fileloc", code.co_filename if code is not None else _caller_file())
        if options.get("doc_md") is None and function.__doc__:
            options["doc_md"] = inspect.cleandoc(function.__doc__)
        with DAG(dag_id or function.__name__, **options) as built:
            positional = [
                DagParam(name)
                for name, p in signature.parameters.items()
                if p.kind is inspect.Parameter.POSITIONAL_ONLY
            ]
            keywords = {
                name: DagParam(name)
                for name in function_params
                if signature.parameters[name].kind is not inspect.Parameter.POSITIONAL_ONLY
            }
            function(*positional, **keywords)
        return built

    return factory
