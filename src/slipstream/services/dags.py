"""DAG use cases: list, show, pause and unpause DAGs, and read import errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slipstream.core.records import DagRecord, ImportErrorRecord
from slipstream.errors import DagNotFound
from slipstream.store import dags as dags_store
from slipstream.store import import_errors as errors_store
from slipstream.store.db import Database
from slipstream.wakeup import WakeupSender


class DagService:
    def __init__(self, db: Database, *, wakeup: WakeupSender | None = None) -> None:
        self._db = db
        self._wakeup = wakeup

    def list_dags(
        self,
        *,
        only_active: bool = True,
        paused: bool | None = None,
        dag_id_pattern: str | None = None,
        tags: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        order_by: str = "dag_id",
    ) -> tuple[list[DagRecord], int]:
        with self._db.read() as conn:
            return dags_store.list_dags(
                conn,
                only_active=only_active,
                paused=paused,
                dag_id_pattern=dag_id_pattern,
                tags=tags,
                limit=limit,
                offset=offset,
                order_by=order_by,
            )

    def get(self, dag_id: str) -> DagRecord:
        with self._db.read() as conn:
            dag = dags_store.get_dag(conn, dag_id)
        if dag is None:
            raise DagNotFound(dag_id)
        return dag

    def structure(self, dag_id: str) -> tuple[DagRecord, Mapping[str, Any]]:
        """The DAG and the serialized structure of its current version."""
        with self._db.read() as conn:
            dag = dags_store.get_dag(conn, dag_id)
            version = (
                dags_store.get_version(conn, dag.version_id)
                if dag is not None and dag.version_id is not None
                else None
            )
        if dag is None or version is None:
            raise DagNotFound(dag_id)
        return dag, version.structure

    def set_paused(self, dag_id: str, is_paused: bool) -> DagRecord:
        with self._db.write() as conn:
            if not dags_store.set_paused(conn, dag_id, is_paused):
                raise DagNotFound(dag_id)
            dag = dags_store.get_dag(conn, dag_id)
        if self._wakeup is not None:
            self._wakeup.notify(f"dag:{dag_id}")
        assert dag is not None
        return dag

    def import_errors(
        self, *, limit: int | None = None, offset: int = 0
    ) -> tuple[list[ImportErrorRecord], int]:
        with self._db.read() as conn:
            return errors_store.list_errors(conn, limit=limit, offset=offset)
