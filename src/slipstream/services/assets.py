"""Asset use cases for the API and the CLI: list and read assets and their events, record an
event by hand (which may start runs of the DAGs scheduled on the asset), and read or empty the
queue of events waiting for a DAG's next asset-triggered run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slipstream.clock import Clock
from slipstream.core.records import AssetEventRecord, AssetRecord
from slipstream.errors import InvalidInputError, NotFoundError, RunNotFound
from slipstream.store import assets as assets_store
from slipstream.store import runs as runs_store
from slipstream.store.db import Database
from slipstream.wakeup import Hint, HintSender


class AssetNotFound(NotFoundError):
    def __init__(self, uri: str) -> None:
        super().__init__(f"The Dataset with uri: `{uri}` was not found")
        self.uri = uri


class QueuedEventNotFound(NotFoundError):
    pass


class AssetService:
    def __init__(self, db: Database, *, clock: Clock, wakeup: HintSender | None = None) -> None:
        self._db = db
        self._clock = clock
        self._wakeup = wakeup

    def list_assets(
        self,
        *,
        uri_pattern: str | None = None,
        dag_ids: Sequence[str] | None = None,
        order_by: str = "id",
        descending: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[AssetRecord], int]:
        with self._db.read() as conn:
            return assets_store.list_assets(
                conn,
                uri_pattern=uri_pattern,
                dag_ids=dag_ids,
                order_by=order_by,
                descending=descending,
                limit=limit,
                offset=offset,
            )

    def get(self, uri: str) -> AssetRecord:
        with self._db.read() as conn:
            found = assets_store.get_asset(conn, uri)
        if found is None:
            raise AssetNotFound(uri)
        return found

    def events(
        self,
        *,
        asset_id: int | None = None,
        source_dag_id: str | None = None,
        source_task_id: str | None = None,
        source_run_id: str | None = None,
        source_map_index: int | None = None,
        order_by: str = "timestamp",
        descending: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[AssetEventRecord], int]:
        with self._db.read() as conn:
            return assets_store.list_events(
                conn,
                asset_id=asset_id,
                source_dag_id=source_dag_id,
                source_task_id=source_task_id,
                source_run_id=source_run_id,
                source_map_index=source_map_index,
                order_by=order_by,
                descending=descending,
                limit=limit,
                offset=offset,
            )

    def create_event(self, uri: str, extra: Mapping[str, Any] | None = None) -> AssetEventRecord:
        """Record an event of a known asset by hand, as Airflow's REST API does (its extra
        gets `from_rest_api: true`), and wake the scheduler to start the runs it completes."""
        if extra is not None and not isinstance(extra, Mapping):
            raise InvalidInputError("extra must be a JSON object", field="extra")
        now = self._clock.now()
        with self._db.write() as conn:
            asset_id = assets_store.asset_id_of(conn, uri)
            if asset_id is None:
                raise AssetNotFound(uri)
            event = assets_store.record_event(
                conn,
                uri=uri,
                extra={**(extra or {}), "from_rest_api": True},
                timestamp=now,
                asset_id=asset_id,
            )
        if self._wakeup is not None:
            self._wakeup.notify(Hint.asset_event())
        return event

    def events_of_run(self, dag_id: str, run_id: str) -> list[AssetEventRecord]:
        """The events that triggered a run (Airflow's upstreamDatasetEvents)."""
        with self._db.read() as conn:
            run = runs_store.get_run(conn, dag_id, run_id)
            if run is None:
                raise RunNotFound(dag_id, run_id)
            return assets_store.events_of_run(conn, run.id)

    def queued_events(
        self, *, dag_id: str | None = None, uri: str | None = None
    ) -> list[tuple[str, str, datetime]]:
        """(dag_id, uri, created_at) waiting for a run; 404 when nothing matches."""
        with self._db.read() as conn:
            found = assets_store.queued_events(conn, dag_id=dag_id, uri=uri)
        if not found:
            raise QueuedEventNotFound(_queue_missing(dag_id, uri))
        return found

    def delete_queued_events(self, *, dag_id: str | None = None, uri: str | None = None) -> int:
        with self._db.write() as conn:
            deleted = assets_store.delete_queued(conn, dag_id=dag_id, uri=uri)
        if not deleted:
            raise QueuedEventNotFound(_queue_missing(dag_id, uri))
        return deleted


def _queue_missing(dag_id: str | None, uri: str | None) -> str:
    parts = [f"dag_id: `{dag_id}`" if dag_id else "", f"dataset uri: `{uri}`" if uri else ""]
    return f"Queue event with {' and '.join(p for p in parts if p)} was not found"
