"""TaskGroup: named boxes of tasks in a DAG, as in Airflow (@task_group is in
task_group_decorator.py, mapped groups in mapped_task_group.py).

A group prefixes the ids of what is created inside it (`group.task`), lends its default_args
to those tasks (over the DAG's, inner groups winning), and can be wired as a whole: an edge into
a group attaches to its root tasks, an edge out of it leaves from its leaf tasks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from slipstream.authoring.dag_context import (
    current_dag,
    enter_task_group,
    exit_task_group,
    open_task_group,
)
from slipstream.authoring.relations import (
    DependencyMixin,
    EdgeLabeller,
    Relatives,
    flatten_relatives,
)
from slipstream.authoring.task import BaseOperator, known_operator_arguments
from slipstream.errors import DagDefinitionError, UnknownArgumentError

if TYPE_CHECKING:
    from slipstream.authoring.dag import DAG

# Airflow's rule for a group id that prefixes task ids: no dots (they separate the levels).
_GROUP_KEY = re.compile(r"^[\w-]+$")
_MAX_GROUP_KEY_LENGTH = 200
_SUFFIX = re.compile(r"__\d+$")


def _check_group_id(group_id: object, prefix_group_id: bool) -> str:
    if not isinstance(group_id, str) or not group_id:
        raise DagDefinitionError(f"group_id must be a non-empty string, not {group_id!r}")
    if len(group_id) > _MAX_GROUP_KEY_LENGTH:
        raise DagDefinitionError(
            f"group_id {group_id!r} is longer than {_MAX_GROUP_KEY_LENGTH} characters"
        )
    if prefix_group_id and not _GROUP_KEY.match(group_id):
        raise DagDefinitionError(
            f"group_id {group_id!r} may only contain letters, digits, '_' and '-' "
            "(it prefixes the ids of the group's tasks)"
        )
    return group_id


class TaskGroup(DependencyMixin):
    """A group of tasks. Use as `with TaskGroup("extract") as tg:` inside a DAG, or pass
    `task_group=tg` to an operator; groups nest. The DAG's own root group has no id."""

    def __init__(
        self,
        group_id: str,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: Mapping[str, Any] | None = None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
    ) -> None:
        raw_id = _check_group_id(group_id, prefix_group_id)
        dag = dag if dag is not None else (parent_group.dag if parent_group else current_dag())
        if dag is None:
            raise DagDefinitionError(
                f"TaskGroup {raw_id!r} must be created inside a DAG (or given dag=)"
            )
        if parent_group is None:
            opened = open_task_group()
            parent_group = opened if opened is not None and opened.dag is dag else dag.task_group
        if parent_group.dag is not dag:
            raise DagDefinitionError(
                f"TaskGroup {raw_id!r} and its parent group belong to different DAGs",
                dag_id=dag.dag_id,
            )
        self.dag: DAG = dag
        self.parent_group: TaskGroup | None = parent_group
        self.prefix_group_id = bool(prefix_group_id)
        # One set for the whole DAG: group ids and their join ids, unique within the DAG.
        self._used_ids: set[str] = parent_group._used_ids
        self._group_id: str | None = self._free_id(raw_id, add_suffix_on_collision)
        self._full_id: str | None = self._compute_full_id()
        own_defaults = dict(default_args or {})
        unknown = sorted(set(own_defaults) - known_operator_arguments())
        if unknown:
            raise UnknownArgumentError(
                unknown[0], f"default_args of task group {self._full_id!r}", dag_id=dag.dag_id
            )
        # Inner groups win over outer ones, as the DAG's own default_args lose to both.
        self.default_args: dict[str, Any] = {**parent_group.default_args, **own_defaults}
        self.tooltip = tooltip
        self.ui_color = ui_color
        self.ui_fgcolor = ui_fgcolor
        self.children: dict[str, BaseOperator | TaskGroup] = {}
        # Kept as Airflow keeps them: what is wired to the group as a whole (for the UI).
        self.upstream_group_ids: set[str] = set()
        self.downstream_group_ids: set[str] = set()
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self._tokens: list[Token[TaskGroup | None]] = []
        assert self._full_id is not None
        parent_group.children[self._full_id] = self
        self._used_ids.update((self._full_id, self.upstream_join_id, self.downstream_join_id))

    @classmethod
    def root(cls, dag: DAG) -> TaskGroup:
        """The DAG's root group: no id, no prefix, holds every top-level task and group."""
        group = cls.__new__(cls)
        group.dag = dag
        group.parent_group = None
        group.prefix_group_id = True
        group._used_ids = set()
        group._group_id = None
        group._full_id = None
        group.default_args = {}
        group.tooltip = ""
        group.ui_color = "CornflowerBlue"
        group.ui_fgcolor = "#000"
        group.children = {}
        group.upstream_group_ids = set()
        group.downstream_group_ids = set()
        group.upstream_task_ids = set()
        group.downstream_task_ids = set()
        group._tokens = []
        return group

    def _compute_full_id(self) -> str | None:
        parent = self.parent_group
        if parent is not None and parent.prefix_group_id and parent._group_id:
            return parent.child_id(self._group_id or "")
        return self._group_id

    def is_group_id(self, node_id: str) -> bool:
        """Whether a group of this DAG (or one of its join nodes) has the id `node_id`."""
        return node_id in self._used_ids

    def _is_taken(self, full_id: str) -> bool:
        return full_id in self._used_ids or full_id in self.dag.task_dict

    def _free_id(self, raw_id: str, add_suffix: bool) -> str:
        """`raw_id`, or with add_suffix Airflow's `raw_id__N` (next N) if that id is taken."""
        assert self.parent_group is not None
        full_id = self.parent_group.child_id
        if not self._is_taken(full_id(raw_id)):
            return raw_id
        if not add_suffix:
            raise DagDefinitionError(
                f"group_id {full_id(raw_id)!r} is already used in DAG {self.dag.dag_id!r}",
                dag_id=self.dag.dag_id,
            )
        base = _SUFFIX.sub("", raw_id)
        number = 1
        while self._is_taken(full_id(f"{base}__{number}")):
            number += 1
        return f"{base}__{number}"

    # -- identity -----------------------------------------------------------------------------

    @property
    def group_id(self) -> str | None:
        """The full id: prefixed with the parent's id when the parent prefixes."""
        return self._full_id

    @property
    def node_id(self) -> str | None:
        return self._full_id

    @property
    def label(self) -> str | None:
        """The id without the parent's prefix: what the UI shows on the box."""
        return self._group_id

    @property
    def is_root(self) -> bool:
        return self._group_id is None

    @property
    def dag_id(self) -> str:
        return self.dag.dag_id

    @property
    def upstream_join_id(self) -> str:
        return f"{self._full_id}.upstream_join_id"

    @property
    def downstream_join_id(self) -> str:
        return f"{self._full_id}.downstream_join_id"

    def child_id(self, label: str) -> str:
        """The id a child named `label` gets: prefixed with this group's id if it prefixes."""
        if self.prefix_group_id and self._full_id:
            return f"{self._full_id}.{label}"
        return label

    def __repr__(self) -> str:
        return f"<TaskGroup: {self._full_id}>" if self._full_id else "<TaskGroup: (root)>"

    # -- membership ---------------------------------------------------------------------------

    def add(self, node: BaseOperator | TaskGroup) -> BaseOperator | TaskGroup:
        """Make a task (or an empty group) a child of this group."""
        if isinstance(node, TaskGroup):
            if node.children:
                raise DagDefinitionError("cannot add a TaskGroup that already has children")
            key = node.group_id
        else:
            if node.task_group is not None and node.task_group is not self:
                raise DagDefinitionError(
                    f"task {node.task_id!r} already belongs to {node.task_group!r}",
                    dag_id=self.dag.dag_id,
                )
            key = node.task_id
        if key is None or key in self.children:
            raise DagDefinitionError(
                f"{key!r} is already in task group {self._full_id!r}", dag_id=self.dag.dag_id
            )
        if isinstance(node, BaseOperator):
            node.task_group = self
        self.children[key] = node
        return node

    def __iter__(self) -> Iterator[BaseOperator]:
        """Every task in the group and its subgroups, in definition order."""
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield from child
            else:
                yield child

    def has_task(self, task: BaseOperator) -> bool:
        return any(member is task for member in self)

    def get_child_by_label(self, label: str) -> BaseOperator | TaskGroup:
        return self.children[self.child_id(label)]

    def get_task_group_dict(self) -> dict[str | None, TaskGroup]:
        """This group and every group under it, by group id (the root's is None)."""
        found: dict[str | None, TaskGroup] = {self._full_id: self}
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                found.update(child.get_task_group_dict())
        return found

    # -- dependencies -------------------------------------------------------------------------

    @property
    def roots(self) -> list[BaseOperator]:
        """Tasks with no upstream task inside the group: where edges into the group attach."""
        tasks = list(self)
        ids = {task.task_id for task in tasks}
        return [task for task in tasks if task.upstream_task_ids.isdisjoint(ids)]

    @property
    def leaves(self) -> list[BaseOperator]:
        """Tasks with no downstream task inside the group, looking past teardowns (Airflow:
        work after a group waits for the group's work, not for its clean-up)."""
        tasks = list(self)
        ids = {task.task_id for task in tasks}
        found: dict[str, BaseOperator] = {}

        def before_teardown(teardown: BaseOperator) -> Iterator[BaseOperator]:
            for upstream in teardown.upstream_list:
                if upstream.task_id not in ids or upstream.is_setup:
                    continue
                if upstream.is_teardown:
                    yield from before_teardown(upstream)
                else:
                    yield upstream

        for task in tasks:
            if task.downstream_task_ids.isdisjoint(ids):
                for leaf in before_teardown(task) if task.is_teardown else [task]:
                    found.setdefault(leaf.task_id, leaf)
        return list(found.values())

    def get_roots(self) -> Iterator[BaseOperator]:
        return iter(self.roots)

    def get_leaves(self) -> Iterator[BaseOperator]:
        return iter(self.leaves)

    def _on_wired(
        self, other: DependencyMixin, *, upstream: bool, edge_modifier: EdgeLabeller | None
    ) -> None:
        if other.is_edge_modifier:
            return
        if isinstance(other, TaskGroup):
            assert other._full_id is not None and self._full_id is not None
            if upstream:
                self.upstream_group_ids.add(other._full_id)
                other.downstream_group_ids.add(self._full_id)
                if edge_modifier is not None:
                    edge_modifier.add_edge_info(
                        self.dag, other.downstream_join_id, self.upstream_join_id
                    )
            else:
                self.downstream_group_ids.add(other._full_id)
                other.upstream_group_ids.add(self._full_id)
                if edge_modifier is not None:
                    edge_modifier.add_edge_info(
                        self.dag, self.downstream_join_id, other.upstream_join_id
                    )
            return
        for task in other.leaves if upstream else other.roots:
            if upstream:
                self.upstream_task_ids.add(task.task_id)
                if edge_modifier is not None:
                    edge_modifier.add_edge_info(self.dag, task.task_id, self.upstream_join_id)
            else:
                self.downstream_task_ids.add(task.task_id)
                if edge_modifier is not None:
                    edge_modifier.add_edge_info(self.dag, self.downstream_join_id, task.task_id)

    def set_downstream(self, other: Relatives, edge_modifier: EdgeLabeller | None = None) -> None:
        targets = flatten_relatives(other)
        for target in targets:
            self._on_wired(target, upstream=False, edge_modifier=edge_modifier)
        for leaf in self.leaves:
            leaf.set_downstream(targets)

    def set_upstream(self, other: Relatives, edge_modifier: EdgeLabeller | None = None) -> None:
        sources = flatten_relatives(other)
        for source in sources:
            self._on_wired(source, upstream=True, edge_modifier=edge_modifier)
        for root in self.roots:
            root.set_upstream(sources)

    # -- the with block -----------------------------------------------------------------------

    def __enter__(self) -> TaskGroup:
        if self.is_root:
            raise DagDefinitionError("a DAG's root task group cannot be used in a with block")
        self._tokens.append(enter_task_group(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        exit_task_group(self._tokens.pop())
