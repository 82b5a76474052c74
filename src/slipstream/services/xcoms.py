"""What a running task reads from the database beyond its workload: XComs of its own run, of
earlier runs (include_prior_dates) and of other DAGs, its DAG's previous successful run, and
the asset events that triggered its run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slipstream.core.records import Run
from slipstream.store import assets as assets_store
from slipstream.store import runs as runs_store
from slipstream.store import xcoms as xcom_store
from slipstream.store.db import Database


class XComReader:
    """Opens its own database handle: it is built inside a task's process, after the fork."""

    def __init__(self, database_url: str) -> None:
        self._db = Database(database_url)

    def pull(
        self, run_pk: int, task_ids: Sequence[str], key: str | None, map_index: int | None = None
    ) -> dict[str, str]:
        with self._db.read() as conn:
            return xcom_store.pull(conn, run_pk, task_ids, key, map_index)

    def pull_across_runs(
        self,
        *,
        dag_id: str,
        key: str,
        task_ids: Sequence[str] | None,
        run_id: str | None = None,
        logical_date_at_most: datetime | None = None,
        map_index: int | None = None,
    ) -> dict[str, str]:
        with self._db.read() as conn:
            return xcom_store.pull_across_runs(
                conn,
                dag_id=dag_id,
                key=key,
                task_ids=task_ids,
                run_id=run_id,
                logical_date_at_most=logical_date_at_most,
                map_index=map_index,
            )

    def previous_success(self, dag_id: str, before: datetime) -> Run | None:
        with self._db.read() as conn:
            return runs_store.previous_successful(conn, dag_id, before)

    def triggering_asset_events(self, run_pk: int) -> list[dict[str, Any]]:
        with self._db.read() as conn:
            return [event.as_context() for event in assets_store.events_of_run(conn, run_pk)]

    def close(self) -> None:
        """Let the connections go (a try in a forked child never needs to; an in-process
        try, as with the inline executor, does)."""
        self._db.dispose()
