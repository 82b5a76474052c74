"""A DAG version's drawing for the Graph tab: its serialized structure (tasks, task groups,
edge labels) turned into shapes with their places (graph_layout.py) and SVG paths. It depends
on the structure alone, so one drawing serves every run of that version."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
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
# Room for a count on the second line: "12 mapped: upstream failed".
COUNTED_MIN_WIDTH = 190.0
NODE_MAX_WIDTH = 300.0
NODE_PADDING = 24.0
ID_CHAR_WIDTH = 7.3
LABEL_CHAR_WIDTH = 6.6  # edge labels and group titles, 11px
LONGEST_ID = int((NODE_MAX_WIDTH - NODE_PADDING) / ID_CHAR_WIDTH)
# A collapsed group's node id in the layout: task ids cannot hold a colon.
FOLDED_PREFIX = "group:"


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
class FoldedShape:
    """A collapsed group, drawn as one node standing for the tasks inside it."""

    group_id: str
    label: str
    tooltip: str
    task_ids: tuple[str, ...]
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
    folded: tuple[FoldedShape, ...]
    edges: tuple[EdgePath, ...]
    labels: tuple[PlacedLabel, ...]


@dataclass(frozen=True, slots=True)
class _Group:
    group_id: str
    parent: str | None
    label: str
    tooltip: str
    is_mapped: bool


def group_ids(structure: Mapping[str, Any]) -> set[str]:
    """The ids of the DAG's task groups."""
    return {g.group_id for g, _ in _walk(structure.get("task_group"), None) if g is not None}


def draw(structure: Mapping[str, Any], collapsed: Collection[str] = ()) -> Drawing:
    """The drawing of a serialized DAG (authoring/serialize.py's shape), with the groups in
    `collapsed` drawn as one node each (and what is inside them hidden)."""
    tasks: Sequence[Mapping[str, Any]] = structure.get("tasks", [])
    groups: dict[str, _Group] = {}
    group_of: dict[str, str | None] = {}
    for group, task_id in _walk(structure.get("task_group"), None):
        if group is not None:
            groups.setdefault(group.group_id, group)
        if task_id is not None:
            group_of[task_id] = group.group_id if group is not None else None

    def chain(group_id: str | None) -> list[str]:  # outermost first
        found = []
        while group_id is not None:
            found.append(group_id)
            group_id = groups[group_id].parent
        return found[::-1]

    # Each task is drawn as itself, or as the outermost collapsed group holding it.
    stands_for: dict[str, str] = {}
    folded_members: dict[str, list[str]] = {}
    for task in tasks:
        task_id = task["task_id"]
        folded = next((g for g in chain(group_of.get(task_id)) if g in collapsed), None)
        stands_for[task_id] = FOLDED_PREFIX + folded if folded else task_id
        if folded:
            folded_members.setdefault(folded, []).append(task_id)
    nodes = []
    labels: dict[str, str] = {}
    for task in tasks:
        task_id = task["task_id"]
        if stands_for[task_id] != task_id:
            continue
        holder = group_of.get(task_id)
        labels[task_id] = _short(task_id, holder)
        nodes.append(_node(task_id, labels[task_id], holder, counted="mapped" in task))
    for group_id in folded_members:
        group = groups[group_id]
        labels[group_id] = _short(group.label, None)
        nodes.append(_node(FOLDED_PREFIX + group_id, labels[group_id], group.parent, counted=True))
    edge_info: Mapping[str, Mapping[str, Mapping[str, Any]]] = structure.get("edge_info", {})
    edges: dict[tuple[str, str], list[str | None]] = {}
    for task in tasks:
        for target in task.get("downstream", []):
            if target not in stands_for:
                continue
            source, drawn = stands_for[task["task_id"]], stands_for[target]
            if source == drawn:  # inside one collapsed group
                continue
            label = edge_info.get(task["task_id"], {}).get(target, {}).get("label")
            edges.setdefault((source, drawn), []).append(str(label) if label else None)
    holders = {n.group for n in nodes if n.group is not None}
    needed = {g for holder in holders for g in chain(holder)}
    specs = [
        GroupSpec(g.group_id, g.parent, len(g.label) * LABEL_CHAR_WIDTH + 8)
        for g in groups.values()
        if g.group_id in needed
    ]
    placed = layout(nodes, [_edge(pair, texts) for pair, texts in edges.items()], specs)
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
            if node.id in by_id
        ),
        groups=tuple(
            GroupShape(g.group_id, g.label, g.tooltip, g.is_mapped, placed.groups[g.group_id])
            for g in groups.values()
            if g.group_id in placed.groups
        ),
        folded=tuple(
            FoldedShape(
                group_id=group_id,
                label=labels[group_id],
                tooltip=groups[group_id].tooltip,
                task_ids=tuple(members),
                box=placed.nodes[FOLDED_PREFIX + group_id],
            )
            for group_id, members in folded_members.items()
        ),
        edges=tuple(EdgePath(e.source, e.target, _path(e.points), e.label) for e in placed.edges),
        labels=placed.labels,
    )


def _node(node_id: str, label: str, group: str | None, *, counted: bool) -> NodeSpec:
    least = COUNTED_MIN_WIDTH if counted else NODE_MIN_WIDTH
    width = min(max(len(label) * ID_CHAR_WIDTH + NODE_PADDING, least), NODE_MAX_WIDTH)
    return NodeSpec(node_id, width, NODE_HEIGHT, group)


def _edge(pair: tuple[str, str], texts: list[str | None]) -> EdgeSpec:
    """One drawn edge for the DAG's edges between two shapes: labelled when they all carry
    the same label."""
    text = texts[0] if len(set(texts)) == 1 else None
    return EdgeSpec(*pair, text, len(text) * LABEL_CHAR_WIDTH if text else 0.0)


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
