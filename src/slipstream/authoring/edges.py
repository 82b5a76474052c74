"""Edge labels: `a >> Label("yes") >> b` wires a to b and names that edge (Airflow's
EdgeModifier). The label is kept in the DAG's edge_info, which the UI draws on the edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slipstream.authoring.relations import (
    DependencyMixin,
    EdgeLabeller,
    Relatives,
    flatten_relatives,
)
from slipstream.errors import DagDefinitionError

if TYPE_CHECKING:
    from slipstream.authoring.dag import DAG
    from slipstream.authoring.task import BaseOperator


class EdgeModifier(DependencyMixin):
    """Stands between tasks on `>>`: each task wired into it is wired to each task wired out
    of it, whichever side was given first, and every such edge carries the label."""

    is_edge_modifier = True

    def __init__(self, label: str | None = None) -> None:
        if label is not None and not isinstance(label, str):
            raise DagDefinitionError(f"an edge label must be a string, not {type(label).__name__}")
        self.label = label
        self._upstream: list[DependencyMixin] = []
        self._downstream: list[DependencyMixin] = []

    def __repr__(self) -> str:
        return f"Label({self.label!r})"

    # A label is no task: edges never attach to it, they pass through it.
    @property
    def roots(self) -> list[BaseOperator]:
        return []

    @property
    def leaves(self) -> list[BaseOperator]:
        return []

    def _on_wired(
        self, other: DependencyMixin, *, upstream: bool, edge_modifier: EdgeLabeller | None
    ) -> None:
        if upstream:
            self._add_upstream(other)
        else:
            self._add_downstream(other)

    def set_downstream(self, other: Relatives, edge_modifier: EdgeLabeller | None = None) -> None:
        for target in flatten_relatives(other):
            self._add_downstream(target)

    def set_upstream(self, other: Relatives, edge_modifier: EdgeLabeller | None = None) -> None:
        for source in flatten_relatives(other):
            self._add_upstream(source)

    def _add_upstream(self, node: DependencyMixin) -> None:
        if not any(known is node for known in self._upstream):
            self._upstream.append(node)
        for target in self._downstream:
            node.set_downstream(target, edge_modifier=self)

    def _add_downstream(self, node: DependencyMixin) -> None:
        if not any(known is node for known in self._downstream):
            self._downstream.append(node)
        for source in self._upstream:
            source.set_downstream(node, edge_modifier=self)

    def add_edge_info(self, dag: DAG, upstream_id: str, downstream_id: str) -> None:
        dag.set_edge_info(upstream_id, downstream_id, {"label": self.label})


class Label(EdgeModifier):
    """Airflow's name for an edge label: `a >> Label("on failure") >> b`."""
