"""A DAG version's drawing for the Graph tab: its serialized structure (tasks, task groups,
edge labels) turned into shapes with their places (graph_layout.py) and SVG paths. It depends
on the structure alone, so one drawing serves every run of that version."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from slipstream.web.graph_layout import (
    Box,
    EdgeSpec,
    GroupSpec,
    NodeSpec,
    PlacedLabel,
    Point,
    layout,
)

# Task nodes: their id on the first line (12px monospace), their state on the second.
NODE_HEIGHT = 46.0
NODE_MIN_WIDTH = 140.0
NODE_MAX_WIDTH = 300.0
NODE_PADDING = 24.0
ID_CHAR_WIDTH = 7.3
LABEL_CHAR_WIDTH = 6.6  # edge labels and group titles, 11px
LONGEST_ID = int((NODE_MAX_WIDTH - NODE_PADDING) / ID_CHAR_WIDTH)


@dataclass(frozen=True, slots=True)
class TaskShape:
    task_id: str
    label: str  # the id within its group, shortened to fit
    operator: str
    is_mapped: bool
    box: Box


@dataclass(frozen=True, slots=True)
class GroupShape:
    group_id: str
    label: str
    tooltip: str
    is_mapped: bool
    box: Box


@dataclass(frozen=True, slots=True)
class EdgePath:
    source: str
    target: str
    d: str  # the SVG path
    label: str | None


@dataclass(frozen=True, slots=True)
class Drawing:
    width: float
    height: float
    tasks: tuple[TaskShape, ...]
    groups: tuple[GroupShape, ...]  # outer groups before the groups inside them
    edges: tuple[EdgePath, ...]
    labels: tuple[PlacedLabel, ...]


@dataclass(frozen=True, slots=True)
class _Group:
    group_id: str
    parent: str | None
    label: str
    tooltip: str
    is_mapped: bool


def draw(structure: Mapping[str, Any]) -> Drawing:
    """The drawing of a serialized DAG (authoring/serialize.py's shape)."""
    tasks: Sequence[Mapping[str, Any]] = structure.get("tasks", [])
    groups: dict[str, _Group] = {}
    group_of: dict[str, str | None] = {}
    for group, task_id in _walk(structure.get("task_group"), None):
        if group is not None:
            groups.setdefault(group.group_id, group)
        if task_id is not None:
            group_of[task_id] = group.group_id if group is not None else None
    known = {t["task_id"] for t in tasks}
    nodes = []
    labels: dict[str, str] = {}
    for task in tasks:
        task_id = task["task_id"]
        holder = group_of.get(task_id)
        labels[task_id] = _short(task_id, holder)
        width = len(labels[task_id]) * ID_CHAR_WIDTH + NODE_PADDING
        nodes.append(
            NodeSpec(task_id, min(max(width, NODE_MIN_WIDTH), NODE_MAX_WIDTH), NODE_HEIGHT, holder)
        )
    edge_info: Mapping[str, Mapping[str, Mapping[str, Any]]] = structure.get("edge_info", {})
    edges = []
    for task in tasks:
        for target in task.get("downstream", []):
            if target not in known:
                continue
            label = edge_info.get(task["task_id"], {}).get(target, {}).get("label")
            text = str(label) if label else None
            width = len(text) * LABEL_CHAR_WIDTH if text else 0.0
            edges.append(EdgeSpec(task["task_id"], target, text, width))
    used = {g for g in group_of.values() if g is not None}
    needed = set()
    for group_id in used:  # every ancestor of a group holding a task
        current: str | None = group_id
        while current is not None and current not in needed:
            needed.add(current)
            current = groups[current].parent
    specs = [
        GroupSpec(g.group_id, g.parent, len(g.label) * LABEL_CHAR_WIDTH + 8)
        for g in groups.values()
        if g.group_id in needed
    ]
    placed = layout(nodes, edges, specs)
    by_id = {t["task_id"]: t for t in tasks}
    return Drawing(
        width=placed.width,
        height=placed.height,
        tasks=tuple(
            TaskShape(
                task_id=node.id,
                label=labels[node.id],
                operator=str(by_id[node.id].get("operator", "")),
                is_mapped="mapped" in by_id[node.id],
                box=placed.nodes[node.id],
            )
            for node in nodes
        ),
        groups=tuple(
            GroupShape(g.group_id, g.label, g.tooltip, g.is_mapped, placed.groups[g.group_id])
            for g in groups.values()
            if g.group_id in placed.groups
        ),
        edges=tuple(EdgePath(e.source, e.target, _path(e.points), e.label) for e in placed.edges),
        labels=placed.labels,
    )


def _walk(
    group: Mapping[str, Any] | None, parent: _Group | None
) -> Iterator[tuple[_Group | None, str | None]]:
    """(group, task id) for each task in the group tree, and (group, None) for each group,
    outer groups first; the root group (no id) is None."""
    if group is None:
        return
    here = parent
    if group.get("group_id"):
        here = _Group(
            group_id=group["group_id"],
            parent=parent.group_id if parent is not None else None,
            label=str(group.get("label") or group["group_id"]),
            tooltip=str(group.get("tooltip") or ""),
            is_mapped="mapped" in group,
        )
        yield here, None
    for child in group.get("children", []):
        if "task_id" in child:
            yield here, child["task_id"]
        else:
            yield from _walk(child, here)


def _short(task_id: str, group: str | None) -> str:
    """The id as the group's box shows it (without the group's prefix), cut to fit."""
    label = task_id[len(group) + 1 :] if group and task_id.startswith(f"{group}.") else task_id
    return label if len(label) <= LONGEST_ID else label[: LONGEST_ID - 1] + "\u2026"


def _path(points: Sequence[Point]) -> str:
    """A path through `points`: straight where level, an S-curve where it changes height
    (the curve's midpoint is the straight segment's, where a label sits)."""
    if not points:
        return ""
    parts = [f"M{_num(points[0][0])} {_num(points[0][1])}"]
    for (x1, y1), (x2, y2) in pairwise(points):
        if y1 == y2:
            parts.append(f"L{_num(x2)} {_num(y2)}")
        else:
            middle = (x1 + x2) / 2
            parts.append(
                f"C{_num(middle)} {_num(y1)} {_num(middle)} {_num(y2)} {_num(x2)} {_num(y2)}"
            )
    return "".join(parts)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")
