"""LatestOnlyOperator: downstream runs only in the latest scheduled interval, or by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from slipstream.authoring.context import make_context
from slipstream.authoring.dag import DAG
from slipstream.authoring.latest_only import LatestOnlyOperator
from slipstream.authoring.operators import EmptyOperator
from tests.authoring.fakes import FakeDagRun, FakeTaskInstance


class FixedLatestOnly(LatestOnlyOperator):
    moment = datetime(2024, 3, 10, 12, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


def _outcome(*, start: datetime, end: datetime, manual: bool) -> tuple[list[str], set[str]]:
    with DAG("latest", schedule="@daily", start_date=datetime(2024, 1, 1, tzinfo=UTC)) as dag:
        gate = FixedLatestOnly(task_id="gate")
        gate >> [EmptyOperator(task_id="a"), EmptyOperator(task_id="b")]
    run = replace(
        FakeDagRun(dag_id="latest"),
        run_type="manual" if manual else "scheduled",
        external_trigger=manual,
        data_interval_start=start,
        data_interval_end=end,
    )
    context = make_context(
        dag=dag,
        task=gate,
        ti=FakeTaskInstance(task_id="gate", dag_id="latest"),
        dag_run=run,
        params={},
        logical_date=start,
        data_interval_start=start,
        data_interval_end=end,
        try_number=1,
    )
    result = gate.execute(context)
    return result, gate.skip_after(result)


def test_the_latest_scheduled_interval_proceeds() -> None:
    # The run for the 9th ends at the 10th's midnight; now (the 10th, noon) is in the next one.
    result, skipped = _outcome(
        start=datetime(2024, 3, 9, tzinfo=UTC), end=datetime(2024, 3, 10, tzinfo=UTC), manual=False
    )
    assert result == ["a", "b"] and skipped == set()


def test_an_older_scheduled_interval_skips_the_direct_downstream() -> None:
    result, skipped = _outcome(
        start=datetime(2024, 3, 1, tzinfo=UTC), end=datetime(2024, 3, 2, tzinfo=UTC), manual=False
    )
    assert result == [] and skipped == {"a", "b"}


def test_a_manual_run_always_proceeds() -> None:
    result, skipped = _outcome(
        start=datetime(2024, 3, 1, tzinfo=UTC), end=datetime(2024, 3, 2, tzinfo=UTC), manual=True
    )
    assert result == ["a", "b"] and skipped == set()
