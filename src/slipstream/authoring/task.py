"""BaseOperator: one task of a DAG, its Airflow arguments, its dependencies and its templates.

Operators take keyword arguments only; arguments left out are filled from the DAG's
default_args (explicit ones win), which is why every operator __init__ is wrapped.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from slipstream.authoring.assets import Asset, outlets_of
from slipstream.authoring.callbacks import checked_callback, warn_sla
from slipstream.authoring.dag_context import current_dag, open_task_group
from slipstream.authoring.exceptions import TaskDeferred
from slipstream.authoring.mapping import ExpandInput, OperatorPartial
from slipstream.authoring.relations import DependencyMixin
from slipstream.authoring.schedules import as_utc
from slipstream.authoring.setup_teardown_context import SetupTeardownRoles, record_task
from slipstream.authoring.templating import make_environment, render_template
from slipstream.authoring.trigger_rules import TriggerRule, parse_trigger_rule
from slipstream.authoring.xcom_arg import XComArg, find_xcom_args
from slipstream.errors import DagDefinitionError

if TYPE_CHECKING:
    import jinja2

    from slipstream.authoring.context import Context
    from slipstream.authoring.dag import DAG
    from slipstream.authoring.task_group import TaskGroup

# Airflow's KEY_REGEX and length limit for dag_id and task_id.
_KEY_PATTERN = re.compile(r"^[\w.-]+$")
_MAX_KEY_LENGTH = 250
WEIGHT_RULES = frozenset({"downstream", "upstream", "absolute"})

Callback = Callable[..., Any] | Sequence[Callable[..., Any]]
_Init = TypeVar("_Init", bound=Callable[..., None])


def validate_key(kind: str, value: object) -> str:
    """`value` if it is a valid dag_id/task_id, else DagDefinitionError saying why."""
    if not isinstance(value, str) or not value:
        raise DagDefinitionError(f"{kind} must be a non-empty string, not {value!r}")
    if len(value) > _MAX_KEY_LENGTH:
        raise DagDefinitionError(f"{kind} {value!r} is longer than {_MAX_KEY_LENGTH} characters")
    if not _KEY_PATTERN.match(value):
        raise DagDefinitionError(
            f"{kind} {value!r} may only contain letters, digits, '_', '.' and '-'"
        )
    return value


def as_duration(value: timedelta | float | None, name: str, owner: str) -> timedelta | None:
    """A timedelta from a timedelta or a number of seconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        duration = timedelta(seconds=value)
    else:
        raise DagDefinitionError(
            f"{name} of {owner} must be a timedelta or seconds, not {type(value).__name__}"
        )
    if duration < timedelta(0):
        raise DagDefinitionError(f"{name} of {owner} must not be negative, got {duration}")
    return duration


def _keyword_names(init: Callable[..., Any]) -> frozenset[str]:
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = inspect.signature(init).parameters
    return frozenset(n for n, p in parameters.items() if p.kind in kinds and n != "self")


def definition_context(
    dag: DAG | None, task_group: TaskGroup | None
) -> tuple[DAG | None, TaskGroup | None]:
    """The DAG and task group a new task joins: those given, else the open `with TaskGroup`
    block (if it is of the task's DAG), else the open `with DAG` block and its root group."""
    dag = dag or current_dag()
    if task_group is None:
        opened = open_task_group()
        if opened is not None and (dag is None or opened.dag is dag):
            task_group = opened
    if dag is None and task_group is not None:
        dag = task_group.dag
    if dag is not None and task_group is None:
        task_group = dag.task_group
    return dag, task_group


def _applies_default_args(init: _Init) -> _Init:
    """Wrap an operator __init__: refuse positional arguments, fill the ones it names from the
    default_args of the DAG and of its task groups (inner ones win), and run
    BaseOperator._finish_init once the outermost __init__ is done."""
    names = _keyword_names(init)

    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if args:
            raise TypeError(f"use keyword arguments when creating a {type(self).__name__}")
        dag, group = definition_context(kwargs.get("dag"), kwargs.get("task_group"))
        if dag is not None:
            defaults = {**dag.default_args, **(group.default_args if group else {})}
            for name in names & defaults.keys():
                kwargs.setdefault(name, defaults[name])
        # Nested __init__ calls (subclass -> BaseOperator) share one instance; count the depth
        # so that _finish_init runs after the subclass has set its own (templated) attributes.
        depth = self.__dict__.get("_init_depth", 0)
        self.__dict__["_init_depth"] = depth + 1
        try:
            init(self, **kwargs)
        finally:
            self.__dict__["_init_depth"] = depth
        if depth == 0:
            self._finish_init()

    return cast(_Init, wrapper)


class BaseOperator(DependencyMixin, SetupTeardownRoles):
    """A task. Subclasses implement execute(context); attributes named in template_fields are
    rendered with Jinja against the run's context just before execute."""

    template_fields: ClassVar[Sequence[str]] = ()
    # A templated string ending in one of these names a template file (Airflow's template_ext).
    template_ext: ClassVar[Sequence[str]] = ()
    # How the UI should show each rendered field ({"bash_command": "bash", "sql": "sql"}), as
    # Airflow's template_fields_renderers; kept for display only.
    template_fields_renderers: ClassVar[dict[str, str]] = {}
    # Keyword arguments this class's __init__ names; default_args keys are checked against the
    # union over all operator classes (see known_operator_arguments).
    _init_arg_names: ClassVar[frozenset[str]] = frozenset()
    # Set on a mapped task (partial().expand()): what it expands over (authoring/mapping.py).
    expand_input: ExpandInput | None = None

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        """Airflow's dynamic task mapping: fix these arguments, then map the others with
        .expand(name=list_or_xcom_arg) or .expand_kwargs(list_of_dicts_or_xcom_arg)."""
        return OperatorPartial(cls, kwargs, BaseOperator._init_arg_names)

    @property
    def is_mapped(self) -> bool:
        return self.expand_input is not None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            cls._init_arg_names = _keyword_names(init)
            # Assigning __init__ is how default_args reach a subclass's own arguments.
            cls.__init__ = _applies_default_args(init)  # type: ignore[method-assign]

    @_applies_default_args
    def __init__(
        self,
        *,
        task_id: str,
        owner: str = "airflow",
        email: str | Sequence[str] | None = None,
        email_on_retry: bool = True,
        email_on_failure: bool = True,
        retries: int | None = 0,
        retry_delay: timedelta | float = timedelta(minutes=5),
        retry_exponential_backoff: bool = False,
        max_retry_delay: timedelta | float | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        depends_on_past: bool = False,
        ignore_first_depends_on_past: bool = True,
        wait_for_downstream: bool = False,
        dag: DAG | None = None,
        params: Mapping[str, Any] | None = None,
        priority_weight: int = 1,
        weight_rule: str = "downstream",
        queue: str = "default",
        pool: str | None = None,
        pool_slots: int = 1,
        sla: timedelta | None = None,
        execution_timeout: timedelta | float | None = None,
        on_execute_callback: Callback | None = None,
        on_failure_callback: Callback | None = None,
        on_success_callback: Callback | None = None,
        on_retry_callback: Callback | None = None,
        on_skipped_callback: Callback | None = None,
        trigger_rule: str = TriggerRule.ALL_SUCCESS,
        run_as_user: str | None = None,
        max_active_tis_per_dag: int | None = None,
        max_active_tis_per_dagrun: int | None = None,
        task_concurrency: int | None = None,
        executor_config: Mapping[str, Any] | None = None,
        do_xcom_push: bool = True,
        doc_md: str | None = None,
        doc: str | None = None,
        task_display_name: str | None = None,
        task_group: TaskGroup | None = None,
        inlets: Any = None,
        outlets: Any = None,
    ) -> None:
        validate_key("task_id", task_id)
        dag, task_group = definition_context(dag, task_group)
        if dag is not None and task_group is not None and task_group.dag is not dag:
            raise DagDefinitionError(
                f"task {task_id!r} is given DAG {dag.dag_id!r} but task group "
                f"{task_group.group_id!r} of DAG {task_group.dag.dag_id!r}",
                dag_id=dag.dag_id,
            )
        # In a group that prefixes, the id is the group's plus this one: `group.task`.
        task_id = validate_key("task_id", task_group.child_id(task_id) if task_group else task_id)
        self.task_id = task_id
        # The group it will join; DAG.add_task makes it a child of that group.
        self.task_group: TaskGroup | None = task_group
        where = f"task {task_id!r}"
        self.owner = owner
        self.email = email
        # Assets this task updates: the scheduler records an event for each when it succeeds.
        self.outlets: list[Asset] = outlets_of(outlets, where)
        # Accepted as Airflow's lineage metadata; nothing is recorded for them.
        self.inlets: list[Any] = (
            list(inlets)
            if isinstance(inlets, (list, tuple))
            else ([] if inlets is None else [inlets])
        )
        self.email_on_retry = email_on_retry
        self.email_on_failure = email_on_failure
        self.retries = _as_retries(retries, where)
        self.retry_delay = as_duration(retry_delay, "retry_delay", where) or timedelta(0)
        self.retry_exponential_backoff = bool(retry_exponential_backoff)
        self.max_retry_delay = as_duration(max_retry_delay, "max_retry_delay", where)
        self.execution_timeout = as_duration(execution_timeout, "execution_timeout", where)
        self.start_date = as_utc(start_date) if start_date is not None else None
        self.end_date = as_utc(end_date) if end_date is not None else None
        # Airflow: waiting for the previous run's downstream implies depending on the past.
        self.depends_on_past = bool(depends_on_past or wait_for_downstream)
        self.wait_for_downstream = bool(wait_for_downstream)
        self.ignore_first_depends_on_past = bool(ignore_first_depends_on_past)
        self.params: dict[str, Any] = dict(params or {})
        self.priority_weight = _as_int(priority_weight, "priority_weight", where)
        if weight_rule not in WEIGHT_RULES:
            raise DagDefinitionError(
                f"invalid weight_rule {weight_rule!r} of {where}; expected one of "
                f"{', '.join(sorted(WEIGHT_RULES))}"
            )
        self.weight_rule = str(weight_rule)
        self.queue = queue
        self.pool = _known_pool(pool, where)
        if not isinstance(pool_slots, int) or pool_slots < 1:
            raise DagDefinitionError(f"pool_slots of {where} must be >= 1, got {pool_slots!r}")
        self.pool_slots = pool_slots
        self.sla = sla
        if sla is not None:
            warn_sla("sla", where)
        self.on_execute_callback = checked_callback(
            on_execute_callback, "on_execute_callback", where
        )
        self.on_failure_callback = checked_callback(
            on_failure_callback, "on_failure_callback", where
        )
        self.on_success_callback = checked_callback(
            on_success_callback, "on_success_callback", where
        )
        self.on_retry_callback = checked_callback(on_retry_callback, "on_retry_callback", where)
        self.on_skipped_callback = checked_callback(
            on_skipped_callback, "on_skipped_callback", where
        )
        if email is not None and not (
            isinstance(email, str)
            or (isinstance(email, (list, tuple)) and all(isinstance(a, str) for a in email))
        ):
            raise DagDefinitionError(
                f"email of {where} must be an address or a list of addresses, "
                f"not {type(email).__name__}"
            )
        self.trigger_rule = parse_trigger_rule(trigger_rule, task_id=task_id)
        if run_as_user is not None:
            # Airflow runs such a task through sudo as that user; Slipstream's workers run every
            # try as their own user, so accepting it would silently drop the isolation asked for.
            raise DagDefinitionError(
                f"run_as_user={run_as_user!r} of {where} is not supported: Slipstream runs "
                "every task as the user its workers run as; remove the argument"
            )
        self.run_as_user = run_as_user
        # task_concurrency is Airflow's older name for max_active_tis_per_dag.
        self.max_active_tis_per_dag = _positive_or_none(
            max_active_tis_per_dag if max_active_tis_per_dag is not None else task_concurrency,
            "max_active_tis_per_dag",
            where,
        )
        self.max_active_tis_per_dagrun = _positive_or_none(
            max_active_tis_per_dagrun, "max_active_tis_per_dagrun", where
        )
        self.executor_config: dict[str, Any] = dict(executor_config or {})
        self.do_xcom_push = bool(do_xcom_push)
        self.doc_md = doc_md
        self.doc = doc
        self.task_display_name = task_display_name
        self._upstream: dict[str, BaseOperator] = {}
        self._downstream: dict[str, BaseOperator] = {}
        self._dag: DAG | None = None
        if dag is not None:
            self.dag = dag
        record_task(self)

    def _finish_init(self) -> None:
        # XComArgs given as (templated) arguments make their producers upstream, as in Airflow.
        for name in self.template_fields:
            for xcom_arg in find_xcom_args(getattr(self, name, None)):
                xcom_arg.operator.add_edge_to(self)

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"

    # -- the DAG ---------------------------------------------------------------------------

    @property
    def dag(self) -> DAG | None:
        return self._dag

    @dag.setter
    def dag(self, dag: DAG) -> None:
        if self._dag is dag:
            return
        if self._dag is not None:
            raise DagDefinitionError(
                f"task {self.task_id!r} already belongs to DAG {self._dag.dag_id!r}",
                dag_id=dag.dag_id,
            )
        dag.add_task(self)
        self._dag = dag

    def has_dag(self) -> bool:
        return self._dag is not None

    @property
    def label(self) -> str:
        """The task id without its group's prefix: what the UI shows inside the group's box."""
        group = self.task_group
        if group is not None and group.group_id and group.prefix_group_id:
            return self.task_id[len(group.group_id) + 1 :]
        return self.task_id

    @property
    def dag_id(self) -> str | None:
        return self._dag.dag_id if self._dag is not None else None

    # -- dependencies ------------------------------------------------------------------------

    @property
    def roots(self) -> list[BaseOperator]:
        return [self]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [self]

    @property
    def output(self) -> XComArg:
        """This task's return value, as an argument for other tasks."""
        return XComArg(self)

    def add_edge_to(self, downstream: BaseOperator) -> None:
        """Make `downstream` depend on this task. A task without a DAG joins the other's DAG."""
        dag = self._dag or downstream._dag
        for task in (self, downstream):
            if task._dag is not None and task._dag is not dag:
                raise DagDefinitionError(
                    f"cannot make {downstream.task_id!r} depend on {self.task_id!r}: "
                    "they belong to different DAGs",
                    dag_id=task._dag.dag_id,
                )
            if task._dag is None and dag is not None:
                task.dag = dag
        self._downstream[downstream.task_id] = downstream
        downstream._upstream[self.task_id] = self

    @property
    def upstream_task_ids(self) -> set[str]:
        return set(self._upstream)

    @property
    def downstream_task_ids(self) -> set[str]:
        return set(self._downstream)

    @property
    def upstream_list(self) -> list[BaseOperator]:
        return list(self._upstream.values())

    @property
    def downstream_list(self) -> list[BaseOperator]:
        return list(self._downstream.values())

    def get_flat_relatives(self, upstream: bool = False) -> list[BaseOperator]:
        """Every task reachable upstream (or downstream), nearest first, each once."""
        found: dict[str, BaseOperator] = {}
        frontier = deque([self])
        while frontier:
            task = frontier.popleft()
            for relative in (task._upstream if upstream else task._downstream).values():
                if relative.task_id not in found and relative is not self:
                    found[relative.task_id] = relative
                    frontier.append(relative)
        return list(found.values())

    def get_flat_relative_ids(self, upstream: bool = False) -> set[str]:
        return {task.task_id for task in self.get_flat_relatives(upstream=upstream)}

    # -- templates and execution ---------------------------------------------------------------

    def get_template_env(self) -> jinja2.Environment:
        return self._dag.get_template_env() if self._dag is not None else make_environment()

    def render_template(
        self,
        value: Any,
        context: Mapping[str, Any],
        environment: jinja2.Environment | None = None,
    ) -> Any:
        """`value` rendered against `context`, with this task's template environment."""
        environment = environment or self.get_template_env()
        return render_template(value, context, environment, template_ext=self.template_ext)

    def render_template_fields(
        self, context: Mapping[str, Any], environment: jinja2.Environment | None = None
    ) -> None:
        """Render every attribute named in template_fields, in place."""
        environment = environment or self.get_template_env()
        for name in self.template_fields:
            setattr(self, name, self.render_template(getattr(self, name), context, environment))

    def execute(self, context: Context) -> Any:
        """Do the work; the return value becomes the "return_value" XCom when do_xcom_push."""
        raise NotImplementedError(f"{type(self).__name__} does not implement execute()")

    def skip_after(self, result: Any) -> set[str]:
        """Task ids that this task's outcome (execute's return value) says to skip."""
        return set()

    def on_kill(self) -> None:
        """Called when the try is being killed (timeout, shutdown): stop child processes."""

    def defer(
        self,
        *,
        trigger: Any,
        method_name: str,
        kwargs: Mapping[str, Any] | None = None,
        timeout: timedelta | float | None = None,
    ) -> None:
        """Airflow's deferral: end this try waiting, with no process, until `trigger` (a time
        trigger: authoring/triggers.py) fires, then resume it at `method_name`."""
        raise TaskDeferred(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)


BaseOperator._init_arg_names = _keyword_names(BaseOperator.__init__)


def _as_retries(value: object, where: str) -> int:
    if value is None:
        return 0
    try:
        retries: int = int(value)  # type: ignore[call-overload]  # Airflow accepts "3" too
    except (TypeError, ValueError):
        raise DagDefinitionError(f"retries of {where} must be an integer, not {value!r}") from None
    if isinstance(value, bool) or retries < 0:
        raise DagDefinitionError(f"retries of {where} must be a non-negative integer")
    return retries


DEFAULT_POOL = "default_pool"


def _known_pool(pool: object, where: str) -> str:
    """A pool name (None: default_pool). Whether the pool exists is the scheduler's question,
    asked when the task is ready: pools live in the database, which a DAG file never reads."""
    if pool is None:
        return DEFAULT_POOL
    if not isinstance(pool, str) or not pool.strip():
        raise DagDefinitionError(f"pool of {where} must be a non-empty string, got {pool!r}")
    return pool


def _as_int(value: object, name: str, where: str) -> int:
    if isinstance(value, bool):
        raise DagDefinitionError(f"{name} of {where} must be an integer, not {value!r}")
    try:
        number: int = int(value)  # type: ignore[call-overload]  # Airflow accepts "3" too
        return number
    except (TypeError, ValueError):
        raise DagDefinitionError(f"{name} of {where} must be an integer, not {value!r}") from None


def _positive_or_none(value: object, name: str, where: str) -> int | None:
    if value is None:
        return None
    number = _as_int(value, name, where)
    if number < 1:
        raise DagDefinitionError(f"{name} of {where} must be at least 1, got {value!r}")
    return number


def _all_operator_classes() -> Iterator[type[BaseOperator]]:
    pending: list[type[BaseOperator]] = [BaseOperator]
    while pending:
        cls = pending.pop()
        yield cls
        pending.extend(cls.__subclasses__())


def known_operator_arguments() -> frozenset[str]:
    """Every keyword that some operator class accepts: what default_args may contain."""
    names: set[str] = set()
    for cls in _all_operator_classes():
        names |= cls._init_arg_names
    return frozenset(names - {"task_id", "dag", "task_group"})
