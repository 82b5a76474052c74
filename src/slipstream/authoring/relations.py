"""Dependencies between tasks: the `>>`/`<<` operators, `chain`, `chain_linear` and
`cross_downstream`.

Anything that can stand on either side of `>>` (an operator, an XComArg, a task group, an edge
label) is a DependencyMixin; it names the operators that edges attach to through `roots`
(incoming) and `leaves` (outgoing), and hears of each wiring through `_on_wired` (groups keep
their upstream/downstream ids, labels remember both sides).
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeAlias, TypeVar

from slipstream.errors import DagDefinitionError

if TYPE_CHECKING:
    from slipstream.authoring.dag import DAG
    from slipstream.authoring.task import BaseOperator

Relatives: TypeAlias = "DependencyMixin | Sequence[DependencyMixin]"
_Other = TypeVar("_Other", bound="DependencyMixin | Sequence[DependencyMixin]")


def flatten_relatives(other: Relatives) -> list[DependencyMixin]:
    if isinstance(other, DependencyMixin):
        return [other]
    given: object = other  # DAG files are untyped: a str can arrive here despite the hints
    if isinstance(given, (str, bytes)) or not isinstance(other, Sequence):
        raise DagDefinitionError(
            f"dependencies can only be set between tasks, not with {type(other).__name__}"
        )
    items = list(other)
    for item in items:
        if not isinstance(item, DependencyMixin):
            raise DagDefinitionError(
                f"dependencies can only be set between tasks, not with {type(item).__name__}"
            )
    return items


class EdgeLabeller(Protocol):
    """What labels an edge (authoring/edges.py: Label): told each edge it stands on."""

    def add_edge_info(self, dag: DAG, upstream_id: str, downstream_id: str) -> None: ...


def wire(leaf: BaseOperator, root: BaseOperator, edge_modifier: EdgeLabeller | None) -> None:
    """One task-to-task edge, labelled if a label stands on it."""
    leaf.add_edge_to(root)
    if edge_modifier is not None:
        dag = leaf.dag
        if dag is None:
            raise DagDefinitionError(
                f"the edge {leaf.task_id!r} >> {root.task_id!r} has a label, so its tasks must "
                "belong to a DAG"
            )
        edge_modifier.add_edge_info(dag, leaf.task_id, root.task_id)


class DependencyMixin(ABC):
    """Something that can be wired with `>>` and `<<`."""

    # A label stands between tasks without being one: nothing is wired to it directly.
    is_edge_modifier: ClassVar[bool] = False

    @property
    @abstractmethod
    def roots(self) -> list[BaseOperator]:
        """Operators that an upstream edge into this attaches to."""

    @property
    @abstractmethod
    def leaves(self) -> list[BaseOperator]:
        """Operators that a downstream edge out of this leaves from."""

    def _on_wired(
        self, other: DependencyMixin, *, upstream: bool, edge_modifier: EdgeLabeller | None
    ) -> None:
        """`other` was just wired upstream of this (upstream=True) or downstream of it. Tasks
        keep nothing more than their edges; groups and labels override this."""
        return

    def set_downstream(self, other: Relatives, edge_modifier: EdgeLabeller | None = None) -> None:
        for target in flatten_relatives(other):
            target._on_wired(self, upstream=True, edge_modifier=edge_modifier)
            for leaf in self.leaves:
                for root in target.roots:
                    wire(leaf, root, edge_modifier)

    def set_upstream(self, other: Relatives, edge_modifier: EdgeLabeller | None = None) -> None:
        for source in flatten_relatives(other):
            source._on_wired(self, upstream=False, edge_modifier=edge_modifier)
            for leaf in source.leaves:
                for root in self.roots:
                    wire(leaf, root, edge_modifier)

    def __rshift__(self, other: _Other) -> _Other:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: _Other) -> _Other:
        self.set_upstream(other)
        return other

    # `[a, b] >> c`: lists have no `>>`, so Python asks the right-hand side.
    def __rrshift__(self, other: Sequence[DependencyMixin]) -> DependencyMixin:
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Sequence[DependencyMixin]) -> DependencyMixin:
        self.set_downstream(other)
        return self


def chain(*elements: Relatives) -> None:
    """Wire elements one after another, like Airflow's chain().

    Two neighbouring lists must have the same length and are wired pairwise; a list next to a
    single task fans out (or in).
    """
    for up, down in itertools.pairwise(elements):
        up_is_list = not isinstance(up, DependencyMixin)
        down_is_list = not isinstance(down, DependencyMixin)
        if up_is_list and down_is_list:
            ups, downs = flatten_relatives(up), flatten_relatives(down)
            if len(ups) != len(downs):
                raise DagDefinitionError(
                    f"chain() got neighbouring lists of different lengths: "
                    f"{len(ups)} and {len(downs)}"
                )
            for one_up, one_down in zip(ups, downs, strict=True):
                one_up.set_downstream(one_down)
        elif up_is_list:
            for one_up in flatten_relatives(up):
                one_up.set_downstream(down)
        else:
            assert isinstance(up, DependencyMixin)
            up.set_downstream(down)


def cross_downstream(from_tasks: Relatives, to_tasks: Relatives) -> None:
    """Make every task in `to_tasks` downstream of every task in `from_tasks`."""
    targets = flatten_relatives(to_tasks)
    for source in flatten_relatives(from_tasks):
        source.set_downstream(targets)


def chain_linear(*elements: Relatives) -> None:
    """Wire each element to every task of the next, like Airflow's chain_linear():
    `chain_linear(a, [b, c], [d, e, f], g)` makes b and c follow a, each of d, e, f follow
    both b and c, and g follow d, e and f."""
    if not elements:
        raise DagDefinitionError("chain_linear() got no tasks: nothing to wire")
    previous: list[DependencyMixin] | None = None
    wired = False
    for element in elements:
        current = flatten_relatives(element)
        if any(item.is_edge_modifier for item in current):
            raise DagDefinitionError("chain_linear() does not take labels; use chain() or >>")
        if previous is not None:
            for item in previous:
                item.set_downstream(element)
                wired = True
        previous = current
    if not wired:
        raise DagDefinitionError(
            "chain_linear() set no dependencies: give it several tasks or lists "
            "(did you forget to unpack a list with *?)"
        )
