"""Dependencies between tasks: the `>>`/`<<` operators, `chain` and `cross_downstream`.

Anything that can stand on either side of `>>` (an operator, an XComArg) is a DependencyMixin;
it names the operators that edges attach to through `roots` (incoming) and `leaves` (outgoing).
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from slipstream.errors import DagDefinitionError

if TYPE_CHECKING:
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


class DependencyMixin(ABC):
    """Something that can be wired with `>>` and `<<`."""

    @property
    @abstractmethod
    def roots(self) -> list[BaseOperator]:
        """Operators that an upstream edge into this attaches to."""

    @property
    @abstractmethod
    def leaves(self) -> list[BaseOperator]:
        """Operators that a downstream edge out of this leaves from."""

    def set_downstream(self, other: Relatives) -> None:
        for target in flatten_relatives(other):
            for leaf in self.leaves:
                for root in target.roots:
                    leaf.add_edge_to(root)

    def set_upstream(self, other: Relatives) -> None:
        for source in flatten_relatives(other):
            for leaf in source.leaves:
                for root in self.roots:
                    leaf.add_edge_to(root)

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
