"""Keeping the metadata database small (`db clean`, the retention job): counting what is old
enough to go, or deleting it in short batches, each its own transaction, then removing the log
files of the runs, task instances and tries that went."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from slipstream.clock import Clock
from slipstream.core import event_log as events
from slipstream.core.cleanup import (
    RULES,
    CleanTable,
    Cutoff,
    LogFiles,
    Pruned,
    RunLogs,
    TryLog,
)
from slipstream.core.log_paths import log_path_for
from slipstream.errors import InvalidInputError
from slipstream.store import cleanup as store
from slipstream.store.db import Database, retry_transient
from slipstream.store.event_log import record_event

log = logging.getLogger(__name__)

# Rows of one table per transaction unless told otherwise: a running scheduler waits for at
# most one such batch (Airflow deletes all in one transaction unless given --batch-size).
DEFAULT_BATCH_SIZE = 100

_RUN_TABLES = frozenset(
    {
        CleanTable.DAG_RUN,
        CleanTable.TASK_INSTANCE,
        CleanTable.TASK_INSTANCE_HISTORY,
        CleanTable.XCOM,
    }
)
_TRY_LOG = re.compile(r"\d+\.log")


@dataclass(slots=True)
class TableResult:
    """What one table lost (or, in a dry run, would lose)."""

    table: CleanTable
    rows: int = 0
    with_them: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    log_files: int = 0

    def add(self, pruned: Pruned, log_files: int) -> None:
        self.rows += pruned.rows
        for name, count in pruned.with_them:
            self.with_them[name] = self.with_them.get(name, 0) + count
        self.batches += 1
        self.log_files += log_files


BatchCallback = Callable[[CleanTable, int, Pruned], None]


class DbCleanupService:
    def __init__(self, db: Database, *, log_folder: Path, clock: Clock) -> None:
        self._db = db
        self._folder = log_folder
        self._clock = clock

    # ----------------------------------------------------------------- counting (dry run)

    def count(self, cutoff: Cutoff, tables: Sequence[CleanTable]) -> list[TableResult]:
        """What cleaning `tables` would delete, changing nothing. Each table is counted on
        its own (a run's XComs are counted under xcom and again under dag_run)."""
        now = self._clock.now()
        results: list[TableResult] = []
        with self._db.read() as conn:
            kept = store.kept_runs(conn) if _RUN_TABLES.intersection(tables) else frozenset()
            for table in tables:
                result = TableResult(table)
                name = RULES[table].table
                if table is CleanTable.DAG_RUN:
                    result.rows = store.count_prunable(conn, cutoff, kept, name, aged=False)
                    result.with_them = {
                        held: store.count_prunable(conn, cutoff, kept, held, aged=False)
                        for held in store.RUN_TABLES
                    }
                elif table in _RUN_TABLES:
                    result.rows = store.count_prunable(conn, cutoff, kept, name, aged=True)
                else:
                    result.rows = store.count_by_age(conn, name, cutoff, now)
                results.append(result)
        return results

    # ----------------------------------------------------------------- deleting

    def clean(
        self,
        cutoff: Cutoff,
        tables: Sequence[CleanTable],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_batch: BatchCallback | None = None,
    ) -> list[TableResult]:
        """Delete what is old enough from each table in turn, `batch_size` rows per
        transaction; `on_batch(table, number, pruned)` hears of each batch."""
        results: list[TableResult] = []
        for table in tables:
            result = TableResult(table)
            results.append(result)
            for pruned, log_files in self.batches(table, cutoff, batch_size):
                result.add(pruned, log_files)
                if on_batch is not None:
                    on_batch(table, result.batches, pruned)
        return results

    def batches(
        self, table: CleanTable, cutoff: Cutoff, batch_size: int
    ) -> Iterator[tuple[Pruned, int]]:
        """Clean one table a batch per step: each step deletes up to `batch_size` rows in one
        transaction, then removes their log files, and yields (what went, log files
        removed). Nothing is held between steps, so a caller may pause between them."""
        if batch_size < 1:
            raise InvalidInputError("the batch size must be at least 1", field="batch_size")
        if table in _RUN_TABLES:
            yield from self._run_batches(table, cutoff, batch_size)
            return
        while True:
            pruned = self._by_age_batch(table, cutoff, batch_size)
            if pruned.rows:
                yield pruned, 0
            if pruned.rows < batch_size:
                return

    def _run_batches(
        self, table: CleanTable, cutoff: Cutoff, batch_size: int
    ) -> Iterator[tuple[Pruned, int]]:
        # Read once: a run kept now stays kept for this whole clean, and any run that becomes
        # a DAG's latest meanwhile is newer than those found old enough.
        with self._db.read() as conn:
            kept = store.kept_runs(conn)
        after = 0
        while True:
            pruned, after, last = self._run_batch(table, cutoff, kept, after, batch_size)
            if pruned.rows:
                yield pruned, self._remove_logs(pruned.logs)
            if last:
                return

    @retry_transient
    def _run_batch(
        self,
        table: CleanTable,
        cutoff: Cutoff,
        kept: frozenset[int],
        after: int,
        size: int,
    ) -> tuple[Pruned, int, bool]:
        """One transaction on the next window of old runs: (what went, where the next window
        starts, whether this was the last)."""
        with self._db.write() as conn:
            window = store.candidate_runs(conn, cutoff, after=after, limit=size, lock=True)
            refs = [ref for ref in window if ref.id not in kept]
            if table is CleanTable.DAG_RUN:
                pruned = store.delete_runs(conn, refs)
                window_done = True
            else:
                pks = [ref.id for ref in refs]
                pruned = store.delete_in_runs(conn, RULES[table].table, pks, cutoff.before, size)
                window_done = pruned.rows < size  # else more of these runs' rows remain
        if not window_done:
            return pruned, after, False
        return pruned, window[-1].id if window else after, len(window) < size

    @retry_transient
    def _by_age_batch(self, table: CleanTable, cutoff: Cutoff, size: int) -> Pruned:
        with self._db.write() as conn:
            return store.delete_by_age(conn, RULES[table].table, cutoff, self._clock.now(), size)

    # ----------------------------------------------------------------- the audit log

    def record(
        self,
        *,
        by: str,
        cutoff: Cutoff,
        tables: Sequence[CleanTable],
        dry_run: bool,
        results: Sequence[TableResult],
        completed: bool = True,
    ) -> None:
        """One audit entry for a `db clean`: what it was asked and what each table lost."""
        extra: dict[str, object] = {
            "clean_before_timestamp": cutoff.before.isoformat(),
            "tables": [t.value for t in tables],
            "dry_run": dry_run,
            "rows": {r.table.value: r.rows for r in results},
        }
        if cutoff.dag_ids:
            extra["dag_ids"] = sorted(cutoff.dag_ids)
        if cutoff.exclude_dag_ids:
            extra["exclude_dag_ids"] = sorted(cutoff.exclude_dag_ids)
        if not completed:
            extra["completed"] = False
        with self._db.write() as conn:
            record_event(conn, events.DB_CLEAN, self._clock.now(), owner=by, extra=extra)

    # ----------------------------------------------------------------- log files

    def _remove_logs(self, targets: Sequence[LogFiles]) -> int:
        """Remove the log files of what went (after its transaction committed: a rolled back
        delete keeps its logs); returns how many files were removed."""
        removed = 0
        for target in targets:
            try:
                removed += self._remove(target)
            except OSError as exc:
                # A file that cannot go is left, and said: the rows are gone already.
                log.warning("could not remove the logs of %s: %s", target, exc)
        return removed

    def _remove(self, target: LogFiles) -> int:
        names = [target.dag_id, target.run_id]
        if not isinstance(target, RunLogs):
            names.append(target.task_id)
        if not all(_is_plain_name(name) for name in names):
            log.warning("not removing logs at a path outside the log folder: %s", target)
            return 0
        run_folder = self._folder / target.dag_id / target.run_id
        if isinstance(target, TryLog):
            path = log_path_for(
                self._folder,
                target.dag_id,
                target.run_id,
                target.task_id,
                target.try_number,
                target.map_index,
            )
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                return 1
            return 0
        if isinstance(target, RunLogs):
            removed = _remove_tree(run_folder)
            _remove_if_empty(run_folder.parent)
            return removed
        task_folder = run_folder / target.task_id
        if target.map_index >= 0:
            removed = _remove_tree(task_folder / f"map_index={target.map_index}")
        else:
            removed = 0
            for path in task_folder.glob("*.log") if task_folder.is_dir() else ():
                if _TRY_LOG.fullmatch(path.name):
                    path.unlink(missing_ok=True)
                    removed += 1
        _remove_if_empty(task_folder)
        return removed


def _is_plain_name(name: str) -> bool:
    """A single path component: no separator, not `.` or `..` (ids come from the database,
    and a path built from one must stay inside the log folder)."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _remove_tree(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    files = sum(1 for path in folder.rglob("*") if not path.is_dir())
    shutil.rmtree(folder)
    return files


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or gone already
        folder.rmdir()
