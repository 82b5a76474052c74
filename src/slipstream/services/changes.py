"""The runs that changed since the last look: what a server process's change watcher asks the
database several times a second while someone has a page open (web/live.py).

The question is one indexed read (store/changes.py) of the rows written in the last `window`
seconds. Rows carry the writer's `updated_at`, which can be a little older than the commit
that makes them visible (a try's end carries the moment the worker saw it), so each look
re-reads the whole window and the feed remembers what it has reported: a row is new when its
key was not seen or its (state, try, updated_at) moved. A row made visible more than `window`
seconds after its `updated_at` would be missed; the scheduler's passes commit in milliseconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from slipstream.clock import Clock
from slipstream.store import changes as changes_store
from slipstream.store.changes import ChangedRow
from slipstream.store.db import Database

DEFAULT_WINDOW_SECONDS = 10.0

_RowKey = tuple[int, str, int]
_RowVersion = tuple[str, int, datetime]


@dataclass(frozen=True, slots=True)
class RunChange:
    """A run some of whose rows (its own, or its task instances') were written."""

    dag_id: str
    run_id: str
    dag_tags: tuple[str, ...]  # for DAG-scoped readers
    seen_at: datetime  # when this process saw it (a row's own time on the first look)


class ChangeFeed:
    """One per watcher: each `poll()` answers the runs changed since the previous one."""

    def __init__(
        self, db: Database, *, clock: Clock, window: float = DEFAULT_WINDOW_SECONDS
    ) -> None:
        self._db = db
        self._clock = clock
        self._window = timedelta(seconds=window)
        self._seen: dict[_RowKey, _RowVersion] = {}
        self._primed = False
        self._lock = threading.Lock()

    @property
    def window(self) -> timedelta:
        return self._window

    def poll(self) -> list[RunChange]:
        """Runs with rows written since the last poll (on the first, in the last window)."""
        now = self._clock.now()
        since = now - self._window
        with self._db.read() as conn:
            rows = changes_store.changed_since(conn, since)
            with self._lock:
                fresh = self._fresh(rows, since)
            tags = changes_store.tags_of(conn, sorted({row.dag_id for row in fresh}))
        with self._lock:
            first = not self._primed
            self._primed = True
        by_run: dict[tuple[str, str], datetime] = {}
        for row in fresh:
            seen_at = row.updated_at if first else now
            key = (row.dag_id, row.run_id)
            by_run[key] = max(by_run.get(key, seen_at), seen_at)
        return [
            RunChange(dag_id, run_id, tuple(tags.get(dag_id, ())), seen_at)
            for (dag_id, run_id), seen_at in by_run.items()
        ]

    def _fresh(self, rows: list[ChangedRow], since: datetime) -> list[ChangedRow]:
        fresh = []
        for row in rows:
            key = (row.run_pk, row.task_id, row.map_index)
            version = (row.state, row.try_number, row.updated_at)
            if self._seen.get(key) != version:
                self._seen[key] = version
                fresh.append(row)
        # What fell out of the window cannot come back in a read: forget it.
        for key in [k for k, (_, _, at) in self._seen.items() if at < since]:
            del self._seen[key]
        return fresh


class ChangeService:
    """Makes change feeds over the process's database."""

    def __init__(
        self, db: Database, *, clock: Clock, window: float = DEFAULT_WINDOW_SECONDS
    ) -> None:
        self._db = db
        self._clock = clock
        self._window = window

    @property
    def window(self) -> timedelta:
        """How far back each look reads."""
        return timedelta(seconds=self._window)

    def feed(self) -> ChangeFeed:
        return ChangeFeed(self._db, clock=self._clock, window=self._window)
