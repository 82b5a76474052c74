"""Keeping the database in step with the DAG files: DAG rows, their versions and import errors.

Each parsed file is applied in one short write transaction, then the scheduler is woken for
every DAG that changed. It serves the scheduler's loop (`step`) and start-up or CLI (`sync_now`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from slipstream.clock import Clock
from slipstream.core.records import DagRecord
from slipstream.parsing.processor import DagFileProcessor, FileParseResult
from slipstream.store import assets as assets_store
from slipstream.store import dags as dags_store
from slipstream.store import import_errors
from slipstream.store.db import Database
from slipstream.wakeup import Hint, HintSender

log = logging.getLogger(__name__)

# sync_now re-parses files whose refused dag_id was freed by the previous pass; a chain of
# such hand-overs longer than this waits for the scheduler's loop.
_SYNC_PASSES = 3


@dataclass(frozen=True, slots=True)
class SyncSummary:
    """What a sync changed. `errors` counts files whose parse failed or was refused in part."""

    files: int = 0
    added: int = 0
    updated: int = 0
    deactivated: int = 0
    errors: int = 0

    def __add__(self, other: SyncSummary) -> SyncSummary:
        return SyncSummary(
            files=self.files + other.files,
            added=self.added + other.added,
            updated=self.updated + other.updated,
            deactivated=self.deactivated + other.deactivated,
            errors=self.errors + other.errors,
        )


@dataclass(slots=True)
class _Applied:
    """One file's effect, gathered inside its transaction and acted on after the commit."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    error: bool = False

    def summary(self) -> SyncSummary:
        return SyncSummary(
            files=1,
            added=len(self.added),
            updated=len(self.updated),
            deactivated=len(self.deactivated),
            errors=int(self.error),
        )


class ParseObserver(Protocol):
    """Told about each file once its parse is applied (the DAG processor's metrics)."""

    def file_parsed(self, fileloc: str, seconds: float | None, *, failed: bool) -> None: ...

    def file_deleted(self, fileloc: str) -> None: ...


def _differs(before: DagRecord, after: DagRecord) -> bool:
    # A re-parse always moves last_parsed_at; only other differences are news.
    return replace(before, last_parsed_at=None) != replace(after, last_parsed_at=None)


class DagFileSync:
    """Applies DagFileProcessor results to the database; a loop source for the scheduler."""

    def __init__(
        self,
        db: Database,
        processor: DagFileProcessor,
        *,
        clock: Clock,
        paused_at_creation: bool,
        wakeup: HintSender | None = None,
        observer: ParseObserver | None = None,
    ) -> None:
        self._db = db
        self._observer = observer
        self._processor = processor
        self._clock = clock
        self._paused_at_creation = paused_at_creation
        self._wakeup = wakeup
        self._seeded = False
        # dag_id -> files refused it because another active file owned it; when the owner lets
        # go, those files are parsed again so one of them can take the DAG over.
        self._refused: dict[str, set[str]] = {}

    def filenos(self) -> list[int]:
        return self._processor.filenos()

    def next_due(self) -> float | None:
        return self._processor.next_due()

    def step(self, now: float) -> None:
        """One loop pass: let the processor work, then apply whatever it finished."""
        self._seed()
        self._apply_all(self._processor.step(now))

    def caught_up(self, now: float) -> bool:
        """Every file found so far is parsed and applied, but for slow ones still going."""
        return self._processor.caught_up(now)

    def close(self) -> None:
        """Stop parsing: kill the children still at it and stop watching the folders."""
        self._processor.shutdown()

    def sync_now(self) -> SyncSummary:
        """Parse every new or changed file now and apply the results; blocks until done."""
        self._seed()
        total = SyncSummary()
        for _ in range(_SYNC_PASSES):
            summary, released = self._apply_all(self._processor.parse_all_now())
            total += summary
            if not released:
                break
        return total

    def _seed(self) -> None:
        """Once per process: files the database knows but this process has not scanned yet
        must be checked, so DAGs whose file vanished while nobody watched become inactive."""
        if self._seeded:
            return
        with self._db.read() as conn:
            active, _ = dags_store.list_dags(conn, only_active=True)
            errors, _ = import_errors.list_errors(conn)
        self._processor.invalidate({d.fileloc for d in active} | {e.filename for e in errors})
        self._seeded = True

    def _apply_all(self, results: Sequence[FileParseResult]) -> tuple[SyncSummary, bool]:
        total = SyncSummary()
        released: set[str] = set()
        # Deletions first, so a DAG that moved files is free before its new file claims it;
        # then by path, so which of two files defining one dag_id wins does not depend on
        # which child happened to finish first.
        results = sorted(results, key=lambda r: (not r.deleted, r.fileloc))
        for index, result in enumerate(results):
            try:
                applied = self._apply_one(result)
            except Exception:
                # The processor believes these files are done; have it look at them again at
                # its next scan rather than lose them, and let the loop log the failure.
                self._processor.invalidate(r.fileloc for r in results[index:])
                raise
            released |= self._release(applied.deactivated)
            self._notify([*applied.added, *applied.updated, *applied.deactivated])
            self._observe(result, applied)
            total += applied.summary()
        if released:
            self._processor.invalidate(released)
        return total, bool(released)

    def _apply_one(self, result: FileParseResult) -> _Applied:
        fileloc = result.fileloc
        applied = _Applied()
        now = self._clock.now()
        with self._db.write() as conn:
            if result.deleted:
                applied.deactivated = dags_store.dag_ids_in_file(conn, fileloc)
                dags_store.deactivate(conn, applied.deactivated)
                import_errors.clear(conn, fileloc)
                self._forget_refusals(fileloc)
                return applied
            if result.error is not None:
                # As Airflow does, a broken file keeps its last good DAGs: a typo being fixed
                # must not stop the schedules it defines.
                import_errors.record(conn, fileloc, result.error, now)
                applied.error = True
                log.warning("DAG file %s failed to import", fileloc)
                return applied

            self._forget_refusals(fileloc)
            refused: list[str] = []
            for parsed in result.dags:
                dag_id: str = parsed.structure["dag_id"]
                before = dags_store.get_dag(conn, dag_id)
                if before is not None and before.is_active and before.fileloc != fileloc:
                    refused.append(f"DAG id {dag_id!r} is already defined in {before.fileloc}")
                    self._refused.setdefault(dag_id, set()).add(fileloc)
                    continue
                after = dags_store.upsert_parsed(
                    conn,
                    parsed.structure,
                    parsed.version_hash,
                    parsed.source,
                    paused_at_creation=self._paused_at_creation,
                    now=now,
                    source_sha256=parsed.source_sha256,
                )
                assets_store.sync_references(conn, parsed.structure, now)
                if before is None or not before.is_active:
                    applied.added.append(dag_id)
                elif _differs(before, after):
                    applied.updated.append(dag_id)
            defined = {parsed.structure["dag_id"] for parsed in result.dags}
            applied.deactivated = [
                d for d in dags_store.dag_ids_in_file(conn, fileloc) if d not in defined
            ]
            dags_store.deactivate(conn, applied.deactivated)
            if refused:
                import_errors.record(conn, fileloc, "\n".join(refused), now)
                applied.error = True
            else:
                import_errors.clear(conn, fileloc)
        return applied

    def _forget_refusals(self, fileloc: str) -> None:
        for dag_id in list(self._refused):
            self._refused[dag_id].discard(fileloc)
            if not self._refused[dag_id]:
                del self._refused[dag_id]

    def _release(self, dag_ids: Iterable[str]) -> set[str]:
        files: set[str] = set()
        for dag_id in dag_ids:
            files |= self._refused.pop(dag_id, set())
        return files

    def _observe(self, result: FileParseResult, applied: _Applied) -> None:
        if self._observer is None:
            return
        try:
            if result.deleted:
                self._observer.file_deleted(result.fileloc)
            else:
                self._observer.file_parsed(
                    result.fileloc, result.duration_seconds, failed=applied.error
                )
        except Exception:
            # Metrics must never stop parsing.
            log.exception("recording DAG parse metrics for %s failed", result.fileloc)

    def _notify(self, dag_ids: Iterable[str]) -> None:
        if self._wakeup is None:
            return
        for dag_id in dag_ids:
            self._wakeup.notify(Hint.dag_changed(dag_id))
