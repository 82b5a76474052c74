"""Health: can the metadata database be read, and has a scheduler heartbeat been seen lately."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from slipstream.clock import Clock
from slipstream.errors import DatabaseUnavailable
from slipstream.store import jobs as jobs_store
from slipstream.store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Health:
    metadatabase_is_healthy: bool
    scheduler_is_healthy: bool
    latest_scheduler_heartbeat: datetime | None


class HealthService:
    """A scheduler is healthy while some running scheduler heartbeated within `lost_after`."""

    def __init__(self, db: Database, *, clock: Clock, lost_after_seconds: float) -> None:
        self._db = db
        self._clock = clock
        self._lost_after = timedelta(seconds=lost_after_seconds)

    def check(self) -> Health:
        try:
            with self._db.read() as conn:
                beat = jobs_store.latest_heartbeat(conn)
        except (DatabaseUnavailable, SQLAlchemyError) as exc:
            log.warning("health check: the metadata database cannot be read: %s", exc)
            return Health(False, False, None)
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        fresh = beat is not None and self._clock.now() - beat <= self._lost_after
        return Health(True, fresh, beat)
