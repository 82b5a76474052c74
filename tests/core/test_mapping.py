"""core.mapping: expansion lengths from serialized expand inputs and upstream lengths."""

from __future__ import annotations

from typing import Any

import pytest

from slipstream.core.mapping import (
    decide_expansion,
    expansion_length,
    referenced_tasks,
    source_length,
)
from slipstream.core.states import TaskState


def expand(**args: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "expand", "args": [[name, source] for name, source in args.items()]}


@pytest.mark.parametrize(
    ("source", "length"),
    [
        ({"literal": 3}, 3),
        ({"xcom": "a"}, 4),
        ({"xcom": "unknown"}, None),
        ({"map": {"xcom": "a"}}, 4),
        ({"zip": [{"xcom": "a"}, {"literal": 2}], "fill": False}, 2),
        ({"zip": [{"xcom": "a"}, {"literal": 2}], "fill": True}, 4),
        ({"zip": [{"xcom": "a"}, {"xcom": "unknown"}], "fill": True}, None),
    ],
)
def test_source_lengths(source: dict[str, Any], length: int | None) -> None:
    assert source_length(source, {"a": 4, "unknown": None}) == length


def test_expand_is_the_product_and_expand_kwargs_the_one_source() -> None:
    lengths = {"a": 4}
    assert expansion_length(expand(x={"literal": 3}, y={"xcom": "a"}), lengths) == 12
    assert expansion_length({"kind": "expand_kwargs", "source": {"xcom": "a"}}, lengths) == 4
    zipped = expand(x={"zip": [{"xcom": "a"}, {"map": {"xcom": "b"}}], "fill": False})
    assert referenced_tasks(zipped) == {"a", "b"}


def test_the_expansion_decision() -> None:
    mapped = expand(x={"xcom": "a"})
    assert decide_expansion(mapped, {"a": 3}, 1024).length == 3
    assert decide_expansion(mapped, {"a": 0}, 1024).target is TaskState.SKIPPED
    too_many = decide_expansion(mapped, {"a": 2000}, 1024)
    assert too_many.target is TaskState.FAILED
    assert too_many.reason == "unmappable length: 2000 > max_map_length (1024)"
    missing = decide_expansion(mapped, {}, 1024)
    assert missing.target is TaskState.UPSTREAM_FAILED and "a pushed no value" in str(
        missing.reason
    )
