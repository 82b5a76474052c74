"""Reading the audit (event) log: a filtered page of entries a caller may see, or one entry.
Writing is `store/event_log.py: record_event`, called by each service inside its own
transaction."""

from __future__ import annotations

from slipstream.auth.permissions import DagScope
from slipstream.core.event_log import EventFilter, EventLogEntry
from slipstream.core.ordering import check_order_by
from slipstream.errors import EventLogNotFound, InvalidInputError
from slipstream.store import event_log as event_store
from slipstream.store.db import Database

ORDER_FIELDS = tuple(event_store.ORDER_COLUMNS)
_MAX_ID = 2**63 - 1


class EventLogService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def list_events(
        self,
        where: EventFilter | None = None,
        *,
        scope: DagScope | None = None,
        limit: int | None = 100,
        offset: int = 0,
        order_by: str = "event_log_id",
        descending: bool = False,
    ) -> tuple[list[EventLogEntry], int]:
        """A page of entries matching `where`, limited to `scope` (None: every entry; else
        entries about DAGs it covers, and entries about no DAG), and how many match."""
        check_order_by(order_by, event_store.ORDER_COLUMNS)
        if limit is not None and limit < 0:
            raise InvalidInputError("limit must not be negative", field="limit")
        if offset < 0:
            raise InvalidInputError("offset must not be negative", field="offset")
        with self._db.read() as conn:
            return event_store.list_events(
                conn,
                where or EventFilter(),
                scope=scope,
                limit=limit,
                offset=offset,
                order_by=order_by,
                descending=descending,
            )

    def get(self, event_log_id: int, *, scope: DagScope | None = None) -> EventLogEntry:
        """One entry; EventLogNotFound when there is none, or it is about a DAG `scope` does
        not cover (a hidden DAG's entries do not exist for the caller)."""
        if not 0 < event_log_id <= _MAX_ID:
            raise EventLogNotFound(event_log_id)
        with self._db.read() as conn:
            entry = event_store.get_event(conn, event_log_id)
            if entry is None:
                raise EventLogNotFound(event_log_id)
            if scope is not None and entry.dag_id is not None and not scope.everything:
                visible, _ = event_store.list_events(
                    conn, EventFilter(dag_id=entry.dag_id), scope=scope, limit=1
                )
                if not visible:
                    raise EventLogNotFound(event_log_id)
        return entry
