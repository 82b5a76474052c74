"""Dynamic task mapping as the scheduler sees it: how many instances a mapped task expands to,
read from its serialized expand input and its upstream tasks' pushed lengths, no user code.

An expand input is JSON: {"kind": "expand", "args": [[name, source], ...]} (the cross product
of its arguments, the last varying fastest) or {"kind": "expand_kwargs", "source": source}.
A source is {"literal": n}, {"xcom": task_id} (that task's return value; every pushed value
across indexes when it is mapped itself), {"map": source} or {"zip": [source, ...], "fill": b}.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from slipstream.core.states import TaskState

# Airflow's [core] max_map_length default.
DEFAULT_MAX_MAP_LENGTH = 1024


def sources_of(mapped: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The top-level sources of an expand input, one per mapped argument."""
    if mapped["kind"] == "expand_kwargs":
        return [mapped["source"]]
    return [source for _, source in mapped["args"]]


def _walk(source: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield source
    if "map" in source:
        yield from _walk(source["map"])
    for inner in source.get("zip", ()):
        yield from _walk(inner)


def referenced_tasks(mapped: Mapping[str, Any]) -> set[str]:
    """Tasks whose return value the expand input maps over."""
    return {s["xcom"] for top in sources_of(mapped) for s in _walk(top) if "xcom" in s}


def source_length(source: Mapping[str, Any], lengths: Mapping[str, int | None]) -> int | None:
    """Items in one source; None while some task it reads has no known length."""
    if "literal" in source:
        return int(source["literal"])
    if "xcom" in source:
        return lengths.get(source["xcom"])
    if "map" in source:
        return source_length(source["map"], lengths)
    inner = [source_length(s, lengths) for s in source["zip"]]
    if any(n is None for n in inner):
        return None
    known = [n for n in inner if n is not None]
    if not known:
        return 0
    return max(known) if source.get("fill") else min(known)


def expansion_length(mapped: Mapping[str, Any], lengths: Mapping[str, int | None]) -> int | None:
    """How many task instances the expand input makes: the product of its arguments' lengths
    (expand) or its one source's length (expand_kwargs); None while one is unknown."""
    counts = [source_length(s, lengths) for s in sources_of(mapped)]
    if any(n is None for n in counts):
        return None
    return math.prod(n for n in counts if n is not None)


@dataclass(frozen=True, slots=True)
class Expansion:
    """What becomes of a mapped task whose upstream allows it to run: `length` instances
    (target scheduled), or its waiting row skipped (nothing to map over), failed (too many)
    or upstream-failed (an upstream it maps over pushed nothing)."""

    target: TaskState
    length: int = 0
    reason: str | None = None


def decide_expansion(
    mapped: Mapping[str, Any], lengths: Mapping[str, int | None], max_map_length: int
) -> Expansion:
    length = expansion_length(mapped, lengths)
    if length is None:
        missing = sorted(t for t in referenced_tasks(mapped) if lengths.get(t) is None)
        return Expansion(
            TaskState.UPSTREAM_FAILED,
            reason=f"nothing to map over: {', '.join(missing)} pushed no value",
        )
    if length == 0:
        # Airflow: a zero-length map skips the task, and trigger rules carry it downstream.
        return Expansion(TaskState.SKIPPED, reason="mapped over an empty list")
    if length > max_map_length:
        return Expansion(
            TaskState.FAILED,
            reason=f"unmappable length: {length} > max_map_length ({max_map_length})",
        )
    return Expansion(TaskState.SCHEDULED, length=length)
