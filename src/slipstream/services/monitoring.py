"""What the metadata database says about the install as a whole, for metrics read at scrape
time: task instances and runs by state, each pool's slots, and files failing to import."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from slipstream.core.pools import PoolUsage
from slipstream.core.states import RunState, TaskState
from slipstream.errors import DatabaseUnavailable
from slipstream.store import import_errors
from slipstream.store import pools as pools_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Census:
    task_instances: dict[TaskState, int]
    runs: dict[RunState, int]
    pools: list[PoolUsage]
    import_errors: int


class MonitoringService:
    """One read snapshot per call: a few GROUP BYs on indexes led by the state column."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def census(self) -> Census | None:
        """None when the database cannot be read (a scrape must still answer, saying so)."""
        try:
            with self._db.read() as conn:
                found, _ = pools_store.list_pools(conn)
                _, error_count = import_errors.list_errors(conn, limit=0)
                return Census(
                    task_instances=ti_store.count_by_state(conn),
                    runs=runs_store.count_by_state(conn),
                    pools=pools_store.usage(conn, found),
                    import_errors=error_count,
                )
        except (DatabaseUnavailable, SQLAlchemyError) as exc:
            log.warning("metrics: the metadata database cannot be read: %s", exc)
            return None
