"""A layered (Sugiyama-style) drawing of a DAG left to right, with nested groups as boxes:
pure geometry from node sizes and edges, no I/O, the same input always giving the same output.

Groups are laid out from the inside out. Each group's members (tasks and inner groups) form
a small graph of their own, with an IN port on its left border for edges arriving from outside
and an OUT port on its right border for edges leaving it; laid out, the group becomes one box
in its parent's graph. So a group's members always stay together, boxes never overlap, and an
edge into a group travels inside it from the port to its task. Each level is laid out in four
steps: layers by longest path (sources pulled right, next to what they feed), a dummy node in
each layer a long edge crosses, barycenter sweeps that keep the order with the fewest
crossings, and vertical positions that align each node with its neighbours while keeping
order and spacing (isotonic regression). Edges bend only in the gaps between columns, so no
edge crosses a node of its own level.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

Point = tuple[float, float]

# Barycenter sweeps (each one forward and one backward) before settling on the best order.
_SWEEPS = 8
# Rounds of aligning each column with its neighbours' positions.
_ALIGN_ROUNDS = 4
_IN = "\x00in"
_OUT = "\x00out"


@dataclass(frozen=True, slots=True)
class NodeSpec:
    id: str
    width: float
    height: float
    group: str | None = None  # the innermost group holding the node


@dataclass(frozen=True, slots=True)
class GroupSpec:
    id: str
    parent: str | None = None
    label_width: float = 0.0  # the box is at least this wide, plus padding


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    source: str
    target: str
    label: str | None = None
    label_width: float = 0.0


@dataclass(frozen=True, slots=True)
class Spacing:
    layer_gap: float = 48.0  # between columns, widened by the labels drawn in the gap
    node_gap: float = 18.0  # between neighbours in a column
    group_padding: float = 14.0
    group_header: float = 22.0  # room for a group's title above its content
    dummy_height: float = 6.0  # a long edge's slot in a column it crosses
    label_padding: float = 16.0
    margin: float = 8.0


@dataclass(frozen=True, slots=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    def encloses(self, other: Box) -> bool:
        return (
            self.x <= other.x
            and self.y <= other.y
            and other.right <= self.right
            and other.bottom <= self.bottom
        )

    def overlaps(self, other: Box) -> bool:
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )


@dataclass(frozen=True, slots=True)
class RoutedEdge:
    source: str
    target: str
    points: tuple[Point, ...]  # a polyline from the source's right side to the target's left
    label: str | None = None


@dataclass(frozen=True, slots=True)
class PlacedLabel:
    text: str  # the labels of every edge sharing this stretch, joined
    x: float  # centre
    y: float


@dataclass(frozen=True, slots=True)
class Layout:
    width: float
    height: float
    nodes: Mapping[str, Box]
    groups: Mapping[str, Box]
    edges: tuple[RoutedEdge, ...]
    labels: tuple[PlacedLabel, ...]
    crossings: int  # edge crossings left within the levels, summed


@dataclass(slots=True)
class _Level:
    """One group's (or the DAG's) graph, laid out in coordinates relative to its content."""

    width: float = 0.0
    height: float = 0.0
    positions: dict[str, Point] = field(default_factory=dict)  # member -> top-left
    routes: dict[tuple[str, str], list[Point]] = field(default_factory=dict)
    label_at: dict[tuple[str, str], Point] = field(default_factory=dict)
    in_y: float = 0.0  # the ports' heights
    out_y: float = 0.0
    crossings: int = 0


def layout(
    nodes: Sequence[NodeSpec],
    edges: Sequence[EdgeSpec],
    groups: Sequence[GroupSpec] = (),
    spacing: Spacing | None = None,
) -> Layout:
    """Lay out `nodes` and `edges` (which must form a DAG; an edge naming an unknown node
    is a ValueError), with `groups` as nested boxes around their members."""
    return _Layouter(nodes, edges, groups, spacing or Spacing()).run()


class _Layouter:
    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        edges: Sequence[EdgeSpec],
        groups: Sequence[GroupSpec],
        spacing: Spacing,
    ) -> None:
        self.s = spacing
        self.nodes = {n.id: n for n in nodes}
        self.groups = {g.id: g for g in groups}
        for edge in edges:
            for end in (edge.source, edge.target):
                if end not in self.nodes:
                    raise ValueError(f"edge {edge.source} -> {edge.target}: no node {end!r}")
        self.edges = [e for e in edges if e.source != e.target]
        # Each node's chain of groups, outermost first; members of each group in input order.
        self.chain: dict[str, tuple[str, ...]] = {}
        self.members: dict[str | None, list[str]] = {None: []}
        for node in nodes:
            chain = self._chain_of(node.group)
            self.chain[node.id] = chain
            parent: str | None = None
            for group_id in chain:
                if group_id not in self.members:
                    self.members[group_id] = []
                    self.members[parent].append(_group_key(group_id))
                parent = group_id
            self.members[parent].append(node.id)
        self.levels: dict[str | None, _Level] = {}
        self.sizes: dict[str, Point] = {}  # member key -> (width, height)
        self.anchors: dict[str, Point] = {}  # member key -> (in y, out y) from its top
        self.level_edges: dict[str | None, dict[tuple[str, str], list[EdgeSpec]]] = {}

    def _chain_of(self, group_id: str | None) -> tuple[str, ...]:
        chain: list[str] = []
        seen: set[str] = set()
        while group_id is not None:
            if group_id in seen:
                raise ValueError(f"group {group_id!r} is inside itself")
            seen.add(group_id)
            chain.append(group_id)
            spec = self.groups.get(group_id)
            if spec is None:
                raise ValueError(f"unknown group {group_id!r}")
            group_id = spec.parent
        return tuple(reversed(chain))

    def _member(self, level: str | None, node_id: str) -> str | None:
        """The member of `level` holding `node_id`, or None when the node is outside it."""
        chain = self.chain[node_id]
        if level is None:
            depth = 0
        elif level in chain:
            depth = chain.index(level) + 1
        else:
            return None
        return _group_key(chain[depth]) if depth < len(chain) else node_id

    def run(self) -> Layout:
        for level in self.members:
            self.level_edges[level] = {}
        for edge in self.edges:
            for level in self._levels_of(edge):
                a = self._member(level, edge.source) or _IN
                b = self._member(level, edge.target) or _OUT
                self.level_edges[level].setdefault((a, b), []).append(edge)
        self._lay_out(None)
        return self._place()

    def _levels_of(self, edge: EdgeSpec) -> list[str | None]:
        """Every level the edge passes through: up from the source's group to the lowest
        group holding both ends, then down to the target's."""
        up, down = self.chain[edge.source], self.chain[edge.target]
        common = 0
        while common < min(len(up), len(down)) and up[common] == down[common]:
            common += 1
        lca: str | None = up[common - 1] if common else None
        return [*reversed(up[common:]), lca, *down[common:]]

    def _lay_out(self, level: str | None) -> None:
        for member in self.members[level]:
            if _is_group(member):
                self._lay_out(_group_of(member))
        edges = self.level_edges[level]
        members = list(self.members[level])
        if any(a == _IN for a, _ in edges):
            members.insert(0, _IN)
        if any(b == _OUT for _, b in edges):
            members.append(_OUT)
        for port in (_IN, _OUT):
            self.sizes[port] = (0.0, 0.0)
            self.anchors[port] = (0.0, 0.0)
        for member in members:
            if member in self.nodes:
                w, h = self.nodes[member].width, self.nodes[member].height
                self.sizes[member] = (w, h)
                self.anchors[member] = (h / 2, h / 2)
        labels = {
            pair: max((e.label_width for e in carried if e.label), default=0.0)
            for pair, carried in edges.items()
        }
        result = _LevelLayout(members, list(edges), labels, self.sizes, self.anchors, self.s).run()
        self.levels[level] = result
        if level is not None:
            pad, header = self.s.group_padding, self.s.group_header
            label_width = self.groups[level].label_width
            width = max(result.width, label_width) + 2 * pad
            self.sizes[_group_key(level)] = (width, result.height + header + 2 * pad)
            self.anchors[_group_key(level)] = (
                header + pad + result.in_y,
                header + pad + result.out_y,
            )

    def _place(self) -> Layout:
        margin = self.s.margin
        origins: dict[str | None, Point] = {None: (margin, margin)}
        node_boxes: dict[str, Box] = {}
        group_boxes: dict[str, Box] = {}
        order: list[str | None] = [None]
        for level in order:
            ox, oy = origins[level]
            for member, (x, y) in self.levels[level].positions.items():
                if member in (_IN, _OUT) or _is_dummy(member):
                    continue
                w, h = self.sizes[member]
                box = Box(ox + x, oy + y, w, h)
                if _is_group(member):
                    group = _group_of(member)
                    group_boxes[group] = box
                    pad = self.s.group_padding
                    origins[group] = (box.x + pad, box.y + self.s.group_header + pad)
                    order.append(group)
                else:
                    node_boxes[member] = box
        routes: list[RoutedEdge] = []
        for edge in self.edges:
            points: list[Point] = []
            for level in self._levels_of(edge):
                a = self._member(level, edge.source) or _IN
                b = self._member(level, edge.target) or _OUT
                ox, oy = origins[level]
                for x, y in self.levels[level].routes[(a, b)]:
                    point = (round(ox + x, 2), round(oy + y, 2))
                    if not points or points[-1] != point:
                        points.append(point)
            routes.append(RoutedEdge(edge.source, edge.target, tuple(points), edge.label))
        placed: list[PlacedLabel] = []
        for level, pairs in self.level_edges.items():
            ox, oy = origins[level]
            for pair, carried in pairs.items():
                texts = list(dict.fromkeys(e.label for e in carried if e.label))
                # A label belongs to the level where its edge runs between two members.
                if not texts or _IN in pair or _OUT in pair:
                    continue
                x, y = self.levels[level].label_at[pair]
                placed.append(PlacedLabel(", ".join(texts), round(ox + x, 2), round(oy + y, 2)))
        root = self.levels[None]
        return Layout(
            width=root.width + 2 * margin,
            height=root.height + 2 * margin,
            nodes=node_boxes,
            groups=group_boxes,
            edges=tuple(routes),
            labels=tuple(placed),
            crossings=sum(level.crossings for level in self.levels.values()),
        )


def _group_key(group_id: str) -> str:
    # Group keys cannot clash with task ids: no task id starts with a NUL.
    return f"\x00g:{group_id}"


def _is_dummy(member: str) -> bool:
    return member.startswith("\x00d")


def _is_group(member: str) -> bool:
    return member.startswith("\x00g:")


def _group_of(member: str) -> str:
    return member[3:]


class _LevelLayout:
    """One level's graph: layers, dummies, order, coordinates and routes."""

    def __init__(
        self,
        members: list[str],
        edges: list[tuple[str, str]],
        label_widths: Mapping[tuple[str, str], float],
        sizes: Mapping[str, Point],
        anchors: Mapping[str, Point],
        spacing: Spacing,
    ) -> None:
        self.members = members
        self.edges = edges
        self.label_widths = label_widths
        self.sizes = dict(sizes)
        self.anchors = dict(anchors)
        self.s = spacing
        self.index = {m: i for i, m in enumerate(members)}
        # Neighbours in the adjacent columns, dummies included.
        self.up: dict[str, list[str]] = {m: [] for m in members}
        self.down: dict[str, list[str]] = {m: [] for m in members}

    def run(self) -> _Level:
        layer, forward = self._layers()
        columns, chains = self._with_dummies(layer, forward)
        columns, crossings = self._order(columns)
        tops = self._tops(columns)
        return self._result(columns, chains, tops, layer, crossings)

    # ------------------------------------------------------------------ layers

    def _layers(self) -> tuple[dict[str, int], list[tuple[str, str]]]:
        """Longest-path layers over a topological order; edges closing a cycle (possible
        between groups wired both ways) are left out of the layering."""
        succ: dict[str, list[str]] = {m: [] for m in self.members}
        indegree = dict.fromkeys(self.members, 0)
        for a, b in self.edges:
            succ[a].append(b)
            indegree[b] += 1
        order: list[str] = []
        ready = [m for m in self.members if indegree[m] == 0]
        remaining = set(self.members)
        while remaining:
            if not ready:  # a cycle: free the earliest member still waiting
                ready = [min(remaining, key=self.index.__getitem__)]
                indegree[ready[0]] = 0
            ready.sort(key=self.index.__getitem__)
            member = ready.pop(0)
            if member not in remaining:
                continue
            remaining.discard(member)
            order.append(member)
            for nxt in succ[member]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0 and nxt in remaining:
                    ready.append(nxt)
        rank = {m: i for i, m in enumerate(order)}
        forward = [(a, b) for a, b in self.edges if rank[a] < rank[b]]
        preds: dict[str, list[str]] = {m: [] for m in self.members}
        succs: dict[str, list[str]] = {m: [] for m in self.members}
        for a, b in forward:
            preds[b].append(a)
            succs[a].append(b)
        layer: dict[str, int] = {}
        for member in order:
            layer[member] = max((layer[p] + 1 for p in preds[member]), default=0)
        # A source feeding only later layers moves next to what it feeds: shorter edges.
        for member in reversed(order):
            if member != _IN and not preds[member] and succs[member]:
                layer[member] = max(layer[member], min(layer[s] for s in succs[member]) - 1)
        if _OUT in layer:
            others = [v for m, v in layer.items() if m != _OUT]
            layer[_OUT] = max(others, default=-1) + 1
        return layer, forward

    def _with_dummies(
        self, layer: dict[str, int], forward: list[tuple[str, str]]
    ) -> tuple[list[list[str]], dict[tuple[str, str], list[str]]]:
        count = max(layer.values(), default=-1) + 1
        columns: list[list[str]] = [[] for _ in range(count)]
        for member in sorted(self.members, key=lambda m: (layer[m], self.index[m])):
            columns[layer[member]].append(member)
        chains: dict[tuple[str, str], list[str]] = {}
        for n, (a, b) in enumerate(forward):
            chain = [a]
            for between in range(layer[a] + 1, layer[b]):
                dummy = f"\x00d{n}:{between}"
                self.sizes[dummy] = (0.0, self.s.dummy_height)
                half = self.s.dummy_height / 2
                self.anchors[dummy] = (half, half)
                self.up[dummy], self.down[dummy] = [], []
                columns[between].append(dummy)
                chain.append(dummy)
            chain.append(b)
            for u, v in pairwise(chain):
                self.down[u].append(v)
                self.up[v].append(u)
            chains[(a, b)] = chain[1:-1]
        return columns, chains

    # ------------------------------------------------------------------- order

    def _order(self, columns: list[list[str]]) -> tuple[list[list[str]], int]:
        best = [list(c) for c in columns]
        best_crossings = _crossings(best, self.down)
        current = [list(c) for c in columns]
        stale = 0
        for _ in range(_SWEEPS):
            if best_crossings == 0 or stale >= 2:
                break
            for n in range(1, len(current)):
                current[n] = _by_barycenter(current[n], current[n - 1], self.up)
            for n in range(len(current) - 2, -1, -1):
                current[n] = _by_barycenter(current[n], current[n + 1], self.down)
            crossings = _crossings(current, self.down)
            if crossings < best_crossings:
                best, best_crossings, stale = [list(c) for c in current], crossings, 0
            else:
                stale += 1
        return best, best_crossings

    # ------------------------------------------------------------- coordinates

    def _tops(self, columns: list[list[str]]) -> dict[str, float]:
        gap = self.s.node_gap
        tops: dict[str, float] = {}
        for column in columns:
            y = 0.0
            for member in column:
                tops[member] = y
                y += self.sizes[member][1] + gap
        passes = [(range(1, len(columns)), self.up, 1, 0)] if len(columns) > 1 else []
        if len(columns) > 1:
            passes.append((range(len(columns) - 2, -1, -1), self.down, 0, 1))
        for _ in range(_ALIGN_ROUNDS):
            for span, neighbours, theirs, mine in passes:
                for n in span:
                    wanted = []
                    for member in columns[n]:
                        near = neighbours[member]
                        if not near:
                            wanted.append(tops[member])
                            continue
                        target = sum(tops[o] + self.anchors[o][theirs] for o in near) / len(near)
                        wanted.append(target - self.anchors[member][mine])
                    heights = [self.sizes[m][1] for m in columns[n]]
                    for member, top in zip(
                        columns[n], _isotonic(wanted, heights, gap), strict=True
                    ):
                        tops[member] = top
        lowest = min(tops.values(), default=0.0)
        return {m: t - lowest for m, t in tops.items()}

    def _result(
        self,
        columns: list[list[str]],
        chains: dict[tuple[str, str], list[str]],
        tops: dict[str, float],
        layer: dict[str, int],
        crossings: int,
    ) -> _Level:
        widths = [max((self.sizes[m][0] for m in c), default=0.0) for c in columns]
        # The gap after each column holds the labels of the edges leaving it.
        gaps = [self.s.layer_gap] * len(columns)
        for (a, _), width in self.label_widths.items():
            if width:
                n = layer[a]
                gaps[n] = max(gaps[n], width + 2 * self.s.label_padding)
        lefts: list[float] = []
        x = 0.0
        for n, width in enumerate(widths):
            lefts.append(x)
            x += width + (gaps[n] if n < len(widths) - 1 else 0.0)
        result = _Level(width=x, crossings=crossings)
        for n, column in enumerate(columns):
            for member in column:
                w = self.sizes[member][0]
                if member == _IN:
                    left = 0.0
                elif member == _OUT:
                    left = x
                else:
                    left = lefts[n] + (widths[n] - w) / 2
                result.positions[member] = (left, tops[member])
        result.height = max(
            (tops[m] + self.sizes[m][1] for m in result.positions),
            default=0.0,
        )
        result.in_y = tops.get(_IN, 0.0)
        result.out_y = tops.get(_OUT, 0.0)

        def right_of(member: str) -> Point:
            x0, y0 = result.positions[member]
            return (x0 + self.sizes[member][0], y0 + self.anchors[member][1])

        def left_of(member: str) -> Point:
            x0, y0 = result.positions[member]
            return (x0, y0 + self.anchors[member][0])

        for a, b in self.edges:
            start, end = right_of(a), left_of(b)
            if (a, b) not in chains:  # an edge closing a cycle: drawn straight
                result.routes[(a, b)] = [start, end]
                result.label_at[(a, b)] = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
                continue
            first, last = layer[a], layer[b]
            # Horizontal within a column, bending only in the gaps.
            points = [start, (lefts[first] + widths[first], start[1])]
            for n, dummy in enumerate(chains[(a, b)], start=first + 1):
                y = tops[dummy] + self.anchors[dummy][0]
                points += [(lefts[n], y), (lefts[n] + widths[n], y)]
            points += [(lefts[last], end[1]), end]
            if a == _IN:
                points[0] = (0.0, start[1])
            if b == _OUT:
                points[-1] = (x, end[1])
            result.routes[(a, b)] = _dedupe(points)
            (x1, y1), (x2, y2) = points[1], points[2]
            result.label_at[(a, b)] = ((x1 + x2) / 2, (y1 + y2) / 2)
        return result


def _dedupe(points: Iterable[Point]) -> list[Point]:
    kept: list[Point] = []
    for point in points:
        if not kept or kept[-1] != point:
            kept.append(point)
    return kept


def _by_barycenter(column: list[str], fixed: list[str], near: Mapping[str, list[str]]) -> list[str]:
    """`column` sorted by the mean position of each member's neighbours in `fixed`; members
    without neighbours keep their place (a stable sort keeps ties in their current order)."""
    position = {m: i for i, m in enumerate(fixed)}
    keys = []
    for i, member in enumerate(column):
        spots = [position[o] for o in near[member] if o in position]
        keys.append(sum(spots) / len(spots) if spots else float(i) * len(fixed) / len(column))
    ranked = sorted(range(len(column)), key=lambda i: keys[i])
    return [column[i] for i in ranked]


def _crossings(columns: list[list[str]], down: Mapping[str, list[str]]) -> int:
    total = 0
    for left, right in pairwise(columns):
        position = {m: i for i, m in enumerate(right)}
        pairs = sorted(
            (i, position[o]) for i, member in enumerate(left) for o in down[member] if o in position
        )
        total += _inversions([b for _, b in pairs])
    return total


def _inversions(values: list[int]) -> int:
    """Pairs i < j with values[i] > values[j]: each value counts the larger ones before it
    (binary search in a sorted list; its inserts are memory moves, fast at these sizes)."""
    seen: list[int] = []
    count = 0
    for value in values:
        count += len(seen) - bisect_right(seen, value)
        insort(seen, value)
    return count


def _isotonic(wanted: list[float], heights: list[float], gap: float) -> list[float]:
    """Tops as close as possible (least squares) to `wanted`, in the same order and at least
    `gap` apart: pool-adjacent-violators on the tops minus their minimum offsets."""
    offsets = [0.0]
    for before in heights[:-1]:
        offsets.append(offsets[-1] + before + gap)
    blocks: list[list[float]] = []  # [mean, weight]
    for want, offset in zip(wanted, offsets, strict=True):
        blocks.append([want - offset, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, weight = blocks.pop()
            prev = blocks[-1]
            prev[0] = (prev[0] * prev[1] + mean * weight) / (prev[1] + weight)
            prev[1] += weight
    values: list[float] = []
    for mean, weight in blocks:
        values.extend([mean] * int(weight))
    return [v + o for v, o in zip(values, offsets, strict=True)]
