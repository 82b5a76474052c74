"""The DAG file processor: notices changed DAG files and keeps a few parse children in flight.

It never blocks in `step`, so a loop (the scheduler's, or `slipstream dag-processor`'s) can
serve it between other work; the blocking `parse_all_now` is for commands that need a fresh
view when no processor is running. A slow or failing file costs only itself: children that run
long stop counting against the parallelism, and files that keep failing are retried with a
growing delay rather than at every look.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from slipstream.authoring.secrets import SecretsBackendFactory
from slipstream.parsing.child import FileParseResult, ParseChild, ParsedDag, ParseLimits
from slipstream.parsing.discovery import FileTracker
from slipstream.parsing.watcher import FolderWatcher

__all__ = ["DagFileProcessor", "FileParseResult", "ParseLimits", "ParsedDag"]

# While waiting in parse_all_now, look at children at least this often: a child that exited
# while a process it started still holds its pipe open never makes that pipe readable.
_MAX_WAIT_SECONDS = 0.1
# A child parsing for longer than this is probably waiting (on a network, on a lock, forever)
# rather than working: it stops holding one of the `max_parallel` places, so the files behind
# it go on. At most `_SLOW_HEADROOM` times `max_parallel` children exist at once.
_SLOW_AFTER_SECONDS = 1.0
_SLOW_HEADROOM = 4
# How often a running child's output size is checked against its limit.
_OUTPUT_CHECK_SECONDS = 0.5
# With inotify, the periodic scan is only a safety net (network filesystems send no events).
_WATCHED_SCAN_SECONDS = 30.0
# A file whose import fails is parsed again after 10 s, then 20 s, 40 s... at most every 10
# minutes, until it changes (then at once): a transient failure heals, a broken file is cheap.
_RETRY_FIRST_SECONDS = 10.0
_RETRY_MAX_SECONDS = 600.0


class DagFileProcessor:
    """Parses new and changed DAG files in forked children, at most `max_parallel` at once.

    Times are monotonic seconds (time.monotonic); `step` must be given the same clock's time.
    """

    def __init__(
        self,
        folders: Sequence[Path],
        *,
        interval: float,
        import_timeout: float,
        max_parallel: int = 2,
        memory_bytes: int = 0,
        output_bytes: int = 16 * 1024 * 1024,
        output_folder: Path | None = None,
        watch: bool = False,
        secrets: SecretsBackendFactory | None = None,
    ) -> None:
        self._secrets = secrets
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
        self._folders = [Path(os.path.abspath(folder)) for folder in folders]
        self._limits = ParseLimits(
            timeout=import_timeout,
            memory_bytes=memory_bytes,
            output_bytes=output_bytes,
            output_folder=output_folder,
        )
        self._max_parallel = max_parallel
        self._tracker = FileTracker(self._folders)
        self._watcher = FolderWatcher(self._folders) if watch else None
        watching = self._watcher is not None and self._watcher.is_watching
        self._interval = max(interval, _WATCHED_SCAN_SECONDS) if watching else interval
        self._queue: dict[str, None] = {}  # an ordered set: files waiting for a child
        self._children: dict[str, ParseChild] = {}  # by fileloc
        self._next_scan: float | None = None  # None: scan at the next step
        self._failures: dict[str, int] = {}  # fileloc -> failed parses in a row
        self._retry_at: dict[str, float] = {}  # fileloc -> when to parse it again
        self._last_step = 0.0  # the time `step` was last given: next_due counts from it

    def filenos(self) -> list[int]:
        fds = [child.fileno() for child in self._children.values()]
        watched = None if self._watcher is None else self._watcher.fileno()
        return fds if watched is None else [*fds, watched]

    def next_due(self) -> float | None:
        """When `step` should next run; a time already past (0.0) means at once."""
        if self._next_scan is None:
            return 0.0
        now = self._last_step
        if self._startable() and self._may_start(now):
            return 0.0
        times = [self._next_scan, *self._retry_at.values()]
        waiting = bool(self._startable())
        for child in self._children.values():
            times += (child.deadline, now + _OUTPUT_CHECK_SECONDS)
            if waiting and now - child.started < _SLOW_AFTER_SECONDS:
                times.append(child.started + _SLOW_AFTER_SECONDS)
        return min(times)

    def step(self, now: float) -> list[FileParseResult]:
        """One pass: rescan if something changed or the interval has passed, collect finished
        children, queue files due for a retry, start more children."""
        self._last_step = now
        results: list[FileParseResult] = []
        if self._watcher is not None and self._watcher.drain():
            self._next_scan = None
        if self._next_scan is None or now >= self._next_scan:
            results += self._rescan(now)
        results += self._collect(now)
        self._queue_due_retries(now)
        self._start_children(now)
        return results

    def caught_up(self, now: float) -> bool:
        """True once every file found so far has been parsed, but for slow ones still going."""
        if self._next_scan is None or self._queue:
            return False
        return all(now - child.started >= _SLOW_AFTER_SECONDS for child in self._children.values())

    def parse_all_now(self) -> list[FileParseResult]:
        """Rescan now and block until every new or changed file (and any already in flight)
        has a result."""
        now = time.monotonic()
        results = self._rescan(now)
        while True:
            results += self._collect(now)
            self._start_children(now)
            if not self._children:
                return results
            deadline = min(child.deadline for child in self._children.values())
            wait = min(max(0.0, deadline - now), _MAX_WAIT_SECONDS)
            select.select(self.filenos(), [], [], wait)
            now = time.monotonic()

    def invalidate(self, filelocs: Iterable[str]) -> None:
        """Parse these files again at the next scan even if unchanged, or report them deleted
        if they are gone: for files known from the database but not yet seen by this process."""
        self._tracker.invalidate(filelocs)

    def dag_files(self) -> list[str]:
        """The DAG files found by the last scan."""
        return self._tracker.dag_files()

    def close(self) -> None:
        """Kill every child still parsing; the processor can be stepped again afterwards."""
        for child in self._children.values():
            child.kill()
        self._queue.update(dict.fromkeys(self._children))
        self._children.clear()

    def shutdown(self) -> None:
        """Kill every child and stop watching the folders."""
        self.close()
        if self._watcher is not None:
            self._watcher.close()

    def _rescan(self, now: float) -> list[FileParseResult]:
        self._next_scan = now + self._interval
        changes = self._tracker.scan()
        for fileloc in [*changes.added, *changes.changed]:
            # Changed since it failed: maybe fixed, so parse it now and forget its backoff.
            self._failures.pop(fileloc, None)
            self._retry_at.pop(fileloc, None)
            self._queue[fileloc] = None
        results: list[FileParseResult] = []
        for fileloc in changes.deleted:
            self._queue.pop(fileloc, None)
            self._failures.pop(fileloc, None)
            self._retry_at.pop(fileloc, None)
            child = self._children.pop(fileloc, None)
            if child is not None:  # its answer would describe a file that no longer exists
                child.kill()
            results.append(FileParseResult(fileloc, [], None, deleted=True))
        return results

    def _collect(self, now: float) -> list[FileParseResult]:
        results: list[FileParseResult] = []
        for fileloc, child in list(self._children.items()):
            result = child.poll(now)
            if result is not None:
                del self._children[fileloc]
                result = replace(result, duration_seconds=max(0.0, now - child.started))
                self._note_outcome(fileloc, result, now)
                results.append(result)
        return results

    def _note_outcome(self, fileloc: str, result: FileParseResult, now: float) -> None:
        if result.error is None:
            self._failures.pop(fileloc, None)
            return
        failures = self._failures.get(fileloc, 0) + 1
        self._failures[fileloc] = failures
        delay = min(_RETRY_MAX_SECONDS, _RETRY_FIRST_SECONDS * 2 ** (failures - 1))
        if fileloc not in self._queue:  # queued again meanwhile (it changed): no retry needed
            self._retry_at[fileloc] = now + delay

    def _queue_due_retries(self, now: float) -> None:
        for fileloc, at in list(self._retry_at.items()):
            if at <= now:
                del self._retry_at[fileloc]
                self._queue[fileloc] = None  # behind new and changed files already waiting

    def _startable(self) -> list[str]:
        # A file changed while its child was running waits for that child to finish first.
        return [fileloc for fileloc in self._queue if fileloc not in self._children]

    def _may_start(self, now: float) -> bool:
        if len(self._children) >= self._max_parallel * _SLOW_HEADROOM:
            return False
        young = sum(now - c.started < _SLOW_AFTER_SECONDS for c in self._children.values())
        return young < self._max_parallel

    def _start_children(self, now: float) -> None:
        sys_path = [str(folder) for folder in self._folders if folder.is_dir()]
        for fileloc in self._startable():
            if not self._may_start(now):
                return
            self._children[fileloc] = ParseChild(
                fileloc, limits=self._limits, now=now, sys_path=sys_path, secrets=self._secrets
            )
            del self._queue[fileloc]
