"""The DAG processor as a long-running duty: DagFileSync served from a loop, a job row whose
heartbeat tells other processes (the CLI) that someone is parsing, and word once the first look
at the folders is done (slow files aside), so start-up can say "ready" without waiting on them.

It runs inside the scheduler's loop by default, or alone as `slipstream dag-processor`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import timedelta

from slipstream.clock import Clock
from slipstream.services.dag_files import DagFileSync
from slipstream.store import jobs as jobs_store
from slipstream.store.db import Database


class DagProcessor:
    """A loop source (filenos, next_due, step) around DagFileSync; `start` before serving it,
    `stop` after."""

    def __init__(
        self,
        db: Database,
        sync: DagFileSync,
        *,
        clock: Clock,
        heartbeat_seconds: float,
        lost_after_seconds: float,
        on_caught_up: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._sync = sync
        self._clock = clock
        self._heartbeat_seconds = heartbeat_seconds
        self._lost_after = timedelta(seconds=lost_after_seconds)
        self._on_caught_up = on_caught_up
        self._hostname = socket.gethostname()
        self._job_id: int | None = None
        self._last_heartbeat = 0.0

    def start(self) -> None:
        """Register this processor; processors of this host that died are marked lost."""
        now = self._clock.now()
        with self._db.write() as conn:
            for job in jobs_store.running_jobs(conn, jobs_store.DAG_PROCESSOR):
                live = jobs_store.is_live(
                    job,
                    hostname=self._hostname,
                    stale_before=now - self._lost_after,
                    registering=True,
                )
                if not live:
                    jobs_store.end_job(conn, job.id, now, state=jobs_store.LOST)
            self._job_id = jobs_store.start_job(
                conn,
                hostname=self._hostname,
                pid=os.getpid(),
                now=now,
                job_type=jobs_store.DAG_PROCESSOR,
            )
        self._last_heartbeat = self._clock.monotonic()

    def stop(self) -> None:
        self._sync.close()
        if self._job_id is not None:
            with self._db.write() as conn:
                jobs_store.end_job(conn, self._job_id, self._clock.now())
            self._job_id = None

    def filenos(self) -> list[int]:
        return self._sync.filenos()

    def next_due(self) -> float | None:
        due = self._sync.next_due()
        beat = self._last_heartbeat + self._heartbeat_seconds
        return beat if due is None else min(due, beat)

    def step(self, now: float) -> None:
        try:
            self._sync.step(now)
        finally:
            # Even when applying a parse failed: the processor itself is alive and will retry.
            if now - self._last_heartbeat >= self._heartbeat_seconds:
                self._heartbeat(now)
        if self._on_caught_up is not None and self._sync.caught_up(now):
            on_caught_up, self._on_caught_up = self._on_caught_up, None
            on_caught_up()

    def _heartbeat(self, now: float) -> None:
        self._last_heartbeat = now
        if self._job_id is not None:
            with self._db.write() as conn:
                jobs_store.heartbeat(conn, self._job_id, self._clock.now())


def processor_is_running(db: Database, *, clock: Clock, lost_after_seconds: float) -> bool:
    """Whether some DAG processor (a scheduler's or a standalone one) is parsing for this
    database: its heartbeat is fresh and, when it runs on this host, its process is alive."""
    hostname = socket.gethostname()
    stale_before = clock.now() - timedelta(seconds=lost_after_seconds)
    with db.read() as conn:
        jobs = jobs_store.running_jobs(conn, jobs_store.DAG_PROCESSOR)
    return any(jobs_store.is_live(j, hostname=hostname, stale_before=stale_before) for j in jobs)
