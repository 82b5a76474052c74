"""Mapped task groups (Airflow 2.5+): a @task_group function called with .expand() or
.expand_kwargs() makes a MappedTaskGroup, and every task created in it is mapped over the
group's expand input, one instance per map index; the function's arguments stand for one map
index's values until a try of one of those tasks resolves them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from slipstream.authoring.mapping import ExpandInput
from slipstream.authoring.params import NOTSET, ArgNotSet
from slipstream.authoring.task import BaseOperator
from slipstream.authoring.task_group import TaskGroup
from slipstream.authoring.templating import Resolvable
from slipstream.authoring.trigger_rules import TriggerRule
from slipstream.authoring.xcom_arg import ReadsXComs, XComArg
from slipstream.errors import DagDefinitionError

if TYPE_CHECKING:
    from slipstream.authoring.dag import DAG


class MappedTaskGroup(TaskGroup):
    """A task group expanded at run time: made by `.expand()`/`.expand_kwargs()` on a
    @task_group function, never built directly. What the expansion reads is upstream of the
    group, as in Airflow."""

    def __init__(
        self,
        group_id: str,
        *,
        expand_input: ExpandInput,
        argument_names: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> None:
        super().__init__(group_id, **kwargs)
        outer = enclosing_mapped_group(self.parent_group)
        if outer is not None:
            raise DagDefinitionError(
                f"mapped task group {self.group_id!r} is inside mapped task group "
                f"{outer.group_id!r}: mapped task groups do not nest",
                dag_id=self.dag.dag_id,
            )
        self.expand_input = expand_input
        # The function's parameters that stand for mapped values (see MappedGroupArgument).
        self.argument_names = argument_names

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            producers: dict[str, BaseOperator] = {}
            for xcom_arg in self.expand_input.references():
                for producer in xcom_arg.leaves:
                    producers.setdefault(producer.task_id, producer)
            if producers:
                # Each instance of the group's first tasks needs its item: they wait for it.
                self.set_upstream(list(producers.values()))
        super().__exit__(exc_type, exc, traceback)

    def __repr__(self) -> str:
        return f"<MappedTaskGroup: {self.group_id}>"


class MappedGroupArgument(Resolvable, ReadsXComs):
    """One parameter of a mapped task group's function: in a try of a task of the group, the
    value of that parameter at the try's map index. A task given it depends on the tasks whose
    output the group expands over."""

    def __init__(self, group: MappedTaskGroup, name: str, default: Any = NOTSET) -> None:
        self.group = group
        self.name = name
        self.default = default

    def xcom_args(self) -> Iterator[XComArg]:
        yield from self.group.expand_input.references()

    def resolve(self, context: Mapping[str, Any]) -> Any:
        map_index = getattr(context["ti"], "map_index", -1)
        if map_index < 0:
            raise MappedGroupError(
                f"argument {self.name!r} of mapped task group {self.group.group_id!r} has a "
                "value only in a try of one of the group's tasks (one map index)"
            )
        expand_input = self.group.expand_input
        values = expand_input.values_for(context, map_index)
        if expand_input.kind == "expand_kwargs":
            unknown = sorted(set(values) - self.group.argument_names)
            if unknown:
                raise MappedGroupError(
                    f"expand_kwargs() item {map_index} of mapped task group "
                    f"{self.group.group_id!r} names {unknown[0]!r}, which is not a parameter "
                    "of the group's function"
                )
        if self.name in values:
            return values[self.name]
        if not isinstance(self.default, ArgNotSet):
            return self.default
        raise MappedGroupError(
            f"expand_kwargs() item {map_index} of mapped task group {self.group.group_id!r} "
            f"has no value for {self.name!r}"
        )

    # Airflow's pitfall, made loud: the function runs once, while the DAG is defined, when the
    # argument has no value yet; a condition or an f-string on it would use the placeholder.
    def __bool__(self) -> bool:
        raise self._no_value_yet("tested as a condition")

    def __format__(self, format_spec: str) -> str:
        raise self._no_value_yet("formatted into a string")

    def _no_value_yet(self, how: str) -> DagDefinitionError:
        return DagDefinitionError(
            f"argument {self.name!r} of mapped task group {self.group.group_id!r} is {how} "
            "while the DAG is defined, but it has a value only when a task of the group runs: "
            "pass it to a task and decide there (@task.branch for a condition)",
            dag_id=self.group.dag.dag_id,
        )

    def __repr__(self) -> str:
        return f"<argument {self.name!r} of mapped task group {self.group.group_id!r}>"


class MappedGroupError(Exception):
    """A mapped task group's argument has no value in this try; the try fails with this."""


def enclosing_mapped_group(group: TaskGroup | None) -> MappedTaskGroup | None:
    """`group` itself or the nearest group around it that is mapped, if any."""
    while group is not None:
        if isinstance(group, MappedTaskGroup):
            return group
        group = group.parent_group
    return None


def mapped_group_of(task: BaseOperator) -> MappedTaskGroup | None:
    """The mapped task group `task` is in (directly or through plain groups inside it)."""
    return enclosing_mapped_group(task.task_group)


def check_mapped_groups(dag: DAG) -> None:
    """Refuse, by task, what a mapped task group cannot hold: a task mapped itself (nested
    mapping, which Airflow does not permit either), trigger_rule "always" (Airflow refuses it
    there), setups and teardowns; and a group's argument used by a task outside the group."""
    for task in dag.task_dict.values():
        group = mapped_group_of(task)
        for argument in _group_arguments(task):
            if argument.group is not group:
                raise DagDefinitionError(
                    f"task {task.task_id!r} takes argument {argument.name!r} of mapped task "
                    f"group {argument.group.group_id!r} but is not in that group: a mapped "
                    "group's arguments have values only inside it",
                    dag_id=dag.dag_id,
                )
        if group is None:
            continue
        where = f"task {task.task_id!r} in mapped task group {group.group_id!r}"
        if task.expand_input is not None:
            raise DagDefinitionError(
                f"{where} is mapped itself (.expand/.expand_kwargs): task mapping inside a "
                "mapped task group is not supported (Airflow does not permit it either); "
                "expand the group over every combination instead",
                dag_id=dag.dag_id,
            )
        if task.trigger_rule == TriggerRule.ALWAYS:
            raise DagDefinitionError(
                f"{where} has trigger_rule 'always', which Airflow does not allow inside a "
                "mapped task group",
                dag_id=dag.dag_id,
            )
        if task.is_setup or task.is_teardown:
            raise DagDefinitionError(
                f"{where} is a {'setup' if task.is_setup else 'teardown'} task: setups and "
                "teardowns inside a mapped task group are not supported by Slipstream",
                dag_id=dag.dag_id,
            )


def _group_arguments(task: BaseOperator) -> Iterator[MappedGroupArgument]:
    for name in task.template_fields:
        yield from _arguments_in(getattr(task, name, None))


def _arguments_in(value: Any) -> Iterator[MappedGroupArgument]:
    if isinstance(value, MappedGroupArgument):
        yield value
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _arguments_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _arguments_in(item)
