"""bench.ui_pages at a small size: it builds its DAGs, serves them, signs in and times every
case (the figures themselves are the bench's business, not a test's)."""

from __future__ import annotations

import pytest

from bench import ui_pages

pytestmark = pytest.mark.slow


def test_the_ui_bench_times_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    code = ui_pages.main(["--dags", "30", "--runs-per-dag", "3", "--requests", "3"])
    out = capsys.readouterr().out
    assert "30 DAGs, 90 runs on sqlite" in out
    for case in ("admin: first page", "admin: last run failed", "scoped to one tag"):
        assert case in out
    assert "worst server p95" in out
    assert code in (0, 1)
