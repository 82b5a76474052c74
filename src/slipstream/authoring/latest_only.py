"""LatestOnlyOperator: lets its downstream run only in the run of the latest scheduled interval.

As in Airflow: a run triggered by hand always proceeds; otherwise the run proceeds only while
"now" lies in the interval that follows its own (the next run has not become due yet), else
every direct downstream task is skipped (trigger rules carry the skip further).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slipstream.authoring.schedules import as_utc
from slipstream.authoring.task import BaseOperator

if TYPE_CHECKING:
    from slipstream.authoring.context import Context

logger = logging.getLogger(__name__)


class LatestOnlyOperator(BaseOperator):
    """Skips its direct downstream tasks unless this is the latest scheduled run."""

    def execute(self, context: Context) -> list[str]:
        follow = sorted(self.downstream_task_ids)
        dag_run = context["dag_run"]
        if dag_run.external_trigger:
            logger.info("Manually triggered run: allowing downstream tasks to run")
            return follow
        interval_end = context.get("data_interval_end")
        dag = context["dag"]
        following = dag.timetable.next_interval(
            as_utc(interval_end) if interval_end is not None else None, dag.start_date
        )
        if following is None:
            logger.info("Last scheduled run: allowing downstream tasks to run")
            return follow
        now = self.now()
        if following.start < now <= following.end:
            logger.info("Latest run: allowing downstream tasks to run")
            return follow
        logger.info(
            "Not the latest run (the latest covers %s to %s): skipping downstream tasks",
            following.start.isoformat(),
            following.end.isoformat(),
        )
        return []

    def now(self) -> datetime:
        """The moment compared with the intervals (a seam for tests)."""
        return datetime.now(UTC)

    def skip_after(self, result: Any) -> set[str]:
        return self.downstream_task_ids - set(result or ())
