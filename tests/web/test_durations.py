"""Durations as the runs pages show them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slipstream.web.durations import duration_text

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0.0s"), (4.25, "4.2s"), (59.9, "59.9s"), (60, "1m 00s"), (185, "3m 05s"),
     (3600, "1h 00m"), (7265, "2h 01m")],
)  # fmt: skip
def test_a_finished_span(seconds: float, text: str) -> None:
    assert duration_text(START, START + timedelta(seconds=seconds), START) == text


def test_an_unfinished_span_counts_to_now_and_nothing_before_a_start() -> None:
    assert duration_text(START, None, START + timedelta(seconds=90)) == "1m 30s"
    assert duration_text(None, None, START) == ""
