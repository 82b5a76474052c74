"""The retention job (SLIPSTREAM_RETENTION_DAYS): a loop source of the scheduler's process that
prunes runs older than the window, with everything they hold and their log files, as `db clean
--tables dag_run` would. One small batch per step, and a pause after it, so scheduling passes
go on between batches however large the backlog."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

from slipstream.clock import Clock
from slipstream.core.cleanup import CleanTable, Cutoff, Pruned
from slipstream.services.db_cleanup import DbCleanupService

log = logging.getLogger(__name__)

# Runs per transaction: each takes its task instances, tries and XComs with it.
BATCH_RUNS = 20
# How often to look for runs that have aged out: a small fraction of the window, within
# bounds (a run is pruned at most this late); the first look comes soon after starting.
MIN_CHECK_SECONDS = 1.0
MAX_CHECK_SECONDS = 3600.0
FIRST_CHECK_SECONDS = 60.0
# At least this long between two batches, and never less than the last batch took.
MIN_PAUSE_SECONDS = 0.01


class RetentionJob:
    """A loop source (filenos, next_due, step): `step` deletes one batch of runs that started
    more than `days` ago (`db clean`'s rules: finished runs only, each DAG's latest non-manual
    run kept)."""

    def __init__(
        self,
        cleanup: DbCleanupService,
        *,
        clock: Clock,
        days: float,
        batch_runs: int = BATCH_RUNS,
    ) -> None:
        self._cleanup = cleanup
        self._clock = clock
        self._window = timedelta(days=days)
        self._batch_runs = batch_runs
        self.check_every = min(
            MAX_CHECK_SECONDS, max(MIN_CHECK_SECONDS, self._window.total_seconds() / 24)
        )
        self._due = clock.monotonic() + min(FIRST_CHECK_SECONDS, self.check_every)
        self._batches: Iterator[tuple[Pruned, int]] | None = None
        self._cutoff: Cutoff | None = None
        self._pruned = 0
        self._log_files = 0

    def filenos(self) -> list[int]:
        return []

    def next_due(self) -> float | None:
        return self._due

    @property
    def is_pruning(self) -> bool:
        """Whether a pass over the aged-out runs is under way (more batches to come)."""
        return self._batches is not None

    def step(self, now: float) -> None:
        """One batch: start a pass if none is under way, delete the next batch of it."""
        if self._batches is None:
            self._cutoff = Cutoff.of(self._clock.now() - self._window)
            self._batches = self._cleanup.batches(
                CleanTable.DAG_RUN, self._cutoff, self._batch_runs
            )
            self._pruned = self._log_files = 0
        started = self._clock.monotonic()
        try:
            pruned, log_files = next(self._batches)
        except StopIteration:
            self._end_pass(now)
            return
        except Exception:
            # The loop logs it; the next look starts a fresh pass.
            self._batches = None
            self._due = now + self.check_every
            raise
        self._pruned += pruned.rows
        self._log_files += log_files
        took = self._clock.monotonic() - started
        self._due = now + max(MIN_PAUSE_SECONDS, took)

    def _end_pass(self, now: float) -> None:
        if self._pruned and self._cutoff is not None:
            log.info(
                "retention: pruned %d runs that started before %s, and %d log files",
                self._pruned,
                self._cutoff.before.isoformat(),
                self._log_files,
            )
        self._batches = None
        self._due = now + self.check_every
