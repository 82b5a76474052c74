"""DAG use cases: list, show, pause and unpause (one or by pattern), delete DAGs, and read
import errors; listings are limited to the DAGs a caller's scope covers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from slipstream.auth.permissions import DagScope
from slipstream.clock import Clock, SystemClock
from slipstream.core import event_log as events
from slipstream.core.records import DagRecord, ImportErrorRecord
from slipstream.errors import ConflictError, DagNotFound, NotFoundError
from slipstream.store import dags as dags_store
from slipstream.store import import_errors as errors_store
from slipstream.store.db import Database
from slipstream.store.event_log import record_event
from slipstream.wakeup import Hint, HintSender

# What a caller who cannot read every DAG defined in a file sees instead of its traceback
# (Airflow's words: the traceback may show code of DAGs hidden from them).
_MAX_ID = 2**31 - 1

REDACTED_STACKTRACE = "REDACTED - you do not have read permission on all DAGs in the file"


@dataclass(frozen=True, slots=True)
class DagView:
    """A DAG as the API shows it: its row, its current version's structure, and whether its
    file's last parse failed."""

    dag: DagRecord
    structure: Mapping[str, Any] = field(default_factory=dict)
    has_import_errors: bool = False


class DagService:
    def __init__(
        self, db: Database, *, wakeup: HintSender | None = None, clock: Clock | None = None
    ) -> None:
        self._db = db
        self._wakeup = wakeup
        self._clock: Clock = clock if clock is not None else SystemClock()

    def _clock_now(self) -> datetime:
        return self._clock.now()

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
        scope: DagScope | None = None,
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
                scope=scope,
            )

    def list_views(
        self,
        *,
        only_active: bool = True,
        paused: bool | None = None,
        dag_id_pattern: str | None = None,
        tags: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        order_by: str = "dag_id",
        scope: DagScope | None = None,
    ) -> tuple[list[DagView], int]:
        """One page of DAGs with their structures, and the total matching; one snapshot."""
        with self._db.read() as conn:
            records, total = dags_store.list_dags(
                conn,
                only_active=only_active,
                paused=paused,
                dag_id_pattern=dag_id_pattern,
                tags=tags,
                limit=limit,
                offset=offset,
                order_by=order_by,
                scope=scope,
            )
            return self._views(conn, records), total

    def _views(self, conn: Connection, records: Sequence[DagRecord]) -> list[DagView]:
        versions = dags_store.versions_by_id(
            conn, {d.version_id for d in records if d.version_id is not None}
        )
        broken = errors_store.files_with_errors(conn, {d.fileloc for d in records})
        views = []
        for dag in records:
            version = versions.get(dag.version_id) if dag.version_id is not None else None
            views.append(
                DagView(
                    dag=dag,
                    structure=version.structure if version is not None else {},
                    has_import_errors=dag.fileloc in broken,
                )
            )
        return views

    def get(self, dag_id: str) -> DagRecord:
        with self._db.read() as conn:
            dag = dags_store.get_dag(conn, dag_id)
        if dag is None:
            raise DagNotFound(dag_id)
        return dag

    def view(self, dag_id: str) -> DagView:
        with self._db.read() as conn:
            dag = dags_store.get_dag(conn, dag_id)
            if dag is None:
                raise DagNotFound(dag_id)
            return self._views(conn, [dag])[0]

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

    def set_paused(self, dag_id: str, is_paused: bool, *, by: str | None = None) -> DagRecord:
        with self._db.write() as conn:
            if not dags_store.set_paused(conn, dag_id, is_paused):
                raise DagNotFound(dag_id)
            record_event(
                conn,
                events.PAUSE if is_paused else events.UNPAUSE,
                self._clock_now(),
                owner=by,
                dag_id=dag_id,
            )
            dag = dags_store.get_dag(conn, dag_id)
        if self._wakeup is not None:
            self._wakeup.notify(Hint.dag_changed(dag_id))
        assert dag is not None
        return dag

    def set_paused_matching(
        self,
        is_paused: bool,
        *,
        dag_id_pattern: str | None,
        only_active: bool = True,
        tags: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        scope: DagScope | None = None,
        by: str | None = None,
    ) -> tuple[list[DagView], int]:
        """Pause or unpause one page of the DAGs matching (as `list_views` selects them; a
        pattern of None or "~" matches all), in one transaction; returns that page, updated,
        and the total matching."""
        pattern = None if dag_id_pattern in (None, "~") else dag_id_pattern
        with self._db.write() as conn:
            records, total = dags_store.list_dags(
                conn,
                only_active=only_active,
                dag_id_pattern=pattern,
                tags=tags,
                limit=limit,
                offset=offset,
                scope=scope,
            )
            dag_ids = [d.dag_id for d in records]
            dags_store.set_paused_many(conn, dag_ids, is_paused)
            now = self._clock_now()
            for dag_id in dag_ids:
                event = events.PAUSE if is_paused else events.UNPAUSE
                record_event(conn, event, now, owner=by, dag_id=dag_id)
            updated = [dags_store.get_dag(conn, dag_id) for dag_id in dag_ids]
            views = self._views(conn, [d for d in updated if d is not None])
        if self._wakeup is not None:
            for dag_id in dag_ids:
                self._wakeup.notify(Hint.dag_changed(dag_id))
        return views, total

    def delete(self, dag_id: str) -> None:
        """Delete a DAG with its versions, runs, task instances and XComs; refused while any of
        its task instances is queued or running. If its file still defines it, the DAG comes
        back the next time that file is parsed (as in Airflow): when the file changes, or
        when a process that parses DAG files starts."""
        with self._db.write() as conn:
            if dags_store.get_dag(conn, dag_id) is None:
                raise DagNotFound(dag_id)
            if dags_store.count_active_task_instances(conn, dag_id):
                raise ConflictError(f"Task instances of dag with id: '{dag_id}' are still running")
            dags_store.delete_dag(conn, dag_id)

    def import_errors(
        self,
        *,
        limit: int | None = None,
        offset: int = 0,
        order_by: str = "import_error_id",
        scope: DagScope | None = None,
    ) -> tuple[list[ImportErrorRecord], int]:
        """One page of import errors and the total. With a `scope` that does not cover every
        DAG, only files defining a DAG it covers are listed, and the traceback of a file that
        also defines DAGs outside it is redacted."""
        with self._db.read() as conn:
            within = None if scope is None else dags_store.scope_filter(conn, scope)
            errors, total = errors_store.list_errors(
                conn, limit=limit, offset=offset, order_by=order_by, files_of=within
            )
            if within is not None and scope is not None:
                errors = self._redacted(conn, errors, scope)
        return errors, total

    def import_error(self, error_id: int, *, scope: DagScope | None = None) -> ImportErrorRecord:
        """One import error; NotFoundError if there is none or `scope` covers no DAG of its
        file; redacted as in `import_errors`."""
        if not 0 < error_id <= _MAX_ID:  # beyond any stored id (and the column's range)
            raise NotFoundError(f"The ImportError with import_error_id: `{error_id}` was not found")
        with self._db.read() as conn:
            error = errors_store.get_error(conn, error_id)
            if error is not None and scope is not None and not scope.everything:
                defined = dags_store.dags_in_files(conn, [error.filename])
                if not any(scope.covers(d.dag_id, d.tags) for d in defined):
                    error = None
                else:
                    error = self._redacted(conn, [error], scope)[0]
        if error is None:
            raise NotFoundError(f"The ImportError with import_error_id: `{error_id}` was not found")
        return error

    def _redacted(
        self, conn: Connection, errors: Sequence[ImportErrorRecord], scope: DagScope
    ) -> list[ImportErrorRecord]:
        defined = dags_store.dags_in_files(conn, {e.filename for e in errors})
        hidden = {d.fileloc for d in defined if not scope.covers(d.dag_id, d.tags)}
        return [
            ImportErrorRecord(e.id, e.filename, REDACTED_STACKTRACE, e.timestamp)
            if e.filename in hidden
            else e
            for e in errors
        ]
