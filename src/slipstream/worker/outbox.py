"""What the worker host holds for no scheduler: outcomes of tries, and callback requests run,
written to the database (the `try_outcomes` outbox; the request rows deleted) in one
transaction. A failed commit is retried until it succeeds: nothing is dropped."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from slipstream.clock import Clock
from slipstream.core.records import CallbackDone, TaskFinished
from slipstream.store import callbacks as callbacks_store
from slipstream.store import outcomes as outcomes_store
from slipstream.store.db import Database

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0

Held = TaskFinished | CallbackDone


class OutboxWriter:
    def __init__(self, db: Database, *, host_job_id: int, clock: Clock) -> None:
        self._db = db
        self._host_job_id = host_job_id
        self._clock = clock
        self._pending: list[Held] = []
        self._retry_at: float | None = None  # monotonic; set after a failed commit

    @property
    def empty(self) -> bool:
        return not self._pending

    def add(self, items: Iterable[Held]) -> None:
        self._pending.extend(items)

    def due_in(self) -> float | None:
        """Seconds until the next commit should be tried (None: nothing waits)."""
        if not self._pending:
            return None
        if self._retry_at is None:
            return 0.0
        return max(0.0, self._retry_at - time.monotonic())

    def flush(self) -> bool:
        """Commit everything held now, unless a failed commit's retry is not due yet; True
        when nothing is left."""
        if not self._pending:
            return True
        if self._retry_at is not None and time.monotonic() < self._retry_at:
            return False
        finished = [item for item in self._pending if isinstance(item, TaskFinished)]
        done = [item.id for item in self._pending if isinstance(item, CallbackDone)]
        try:
            with self._db.write() as conn:
                outcomes_store.record(
                    conn, finished, worker_job_id=self._host_job_id, now=self._clock.now()
                )
                callbacks_store.remove(conn, done)
        except Exception as exc:
            if self._retry_at is None:
                log.warning(
                    "worker host: writing %d outcomes to the outbox failed (%s); retrying every"
                    " %g s until it succeeds",
                    len(self._pending),
                    exc,
                    RETRY_SECONDS,
                )
            self._retry_at = time.monotonic() + RETRY_SECONDS
            return False
        if self._retry_at is not None:
            log.info("worker host: the outbox is written again")
        self._retry_at = None
        if finished:
            log.info(
                "worker host: %d outcomes kept in the outbox for the next scheduler", len(finished)
            )
        self._pending.clear()
        return True
