"""`db check` and `db check-migrations`: whether the metadata database answers, with retries,
and waiting (up to a timeout) for its schema to reach this Slipstream's newest revision, as a
container waits before starting a scheduler."""

from __future__ import annotations

import time
from collections.abc import Callable

from slipstream.clock import Clock
from slipstream.errors import DatabaseUnavailable, SchemaNotAtHead
from slipstream.store import schema
from slipstream.store.db import Database

# How often the schema revision is read again while waiting (Airflow's check-migrations
# looks once a second).
POLL_SECONDS = 1.0


class DatabaseChecks:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = db
        self._clock = clock
        self._sleep = sleep

    def check(
        self,
        *,
        retries: int = 0,
        retry_delay: float = 1.0,
        on_retry: Callable[[int, DatabaseUnavailable], None] | None = None,
    ) -> None:
        """Connect and run one query; tries `retries` more times, `retry_delay` seconds
        apart, before raising DatabaseUnavailable. `on_retry(retries_left, error)` hears of
        each failure that is tried again."""
        for attempt in range(retries + 1):
            try:
                self._db.ping()
                return
            except DatabaseUnavailable as exc:
                left = retries - attempt
                if left == 0:
                    raise
                if on_retry is not None:
                    on_retry(left, exc)
                self._sleep(retry_delay)

    def wait_for_migrations(
        self, timeout: float, *, on_wait: Callable[[str | None], None] | None = None
    ) -> str:
        """Wait until the schema is at this Slipstream's head revision (checked at least
        once, however short `timeout`); returns it, or raises SchemaNotAtHead naming the
        revision found. A database that does not answer yet is waited for too, and if it
        never does, its DatabaseUnavailable is raised."""
        expected = schema.head_revision()
        deadline = self._clock.monotonic() + max(0.0, timeout)
        while True:
            unavailable: DatabaseUnavailable | None = None
            current: str | None = None
            try:
                self._db.ping()  # first: a missing SQLite file is reported, not created
                current = schema.current_revision(self._db)
            except DatabaseUnavailable as exc:
                unavailable = exc
            if unavailable is None and current == expected:
                return expected
            left = deadline - self._clock.monotonic()
            if left <= 0:
                if unavailable is not None:
                    raise unavailable
                known = current is None or schema.is_known_revision(current)
                raise SchemaNotAtHead(current, expected, max(0.0, timeout), known=known)
            if on_wait is not None:
                on_wait(current)
            self._sleep(min(POLL_SECONDS, left))
