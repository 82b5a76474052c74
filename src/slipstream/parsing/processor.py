"""The DAG file processor: rescans the DAG folders and keeps a few parse children in flight.

It never blocks in `step`, so the scheduler's loop can serve it between passes; the blocking
`parse_all_now` is for start-up and CLI commands that need a fresh view.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from slipstream.parsing.child import FileParseResult, ParseChild, ParsedDag
from slipstream.parsing.discovery import FileTracker

__all__ = ["DagFileProcessor", "FileParseResult", "ParsedDag"]

# While waiting in parse_all_now, look at children at least this often: a child that exited
# while a process it started still holds its pipe open never makes that pipe readable.
_MAX_WAIT_SECONDS = 0.1


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
    ) -> None:
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
        self._folders = [Path(os.path.abspath(folder)) for folder in folders]
        self._interval = interval
        self._import_timeout = import_timeout
        self._max_parallel = max_parallel
        self._tracker = FileTracker(self._folders)
        self._queue: dict[str, None] = {}  # an ordered set: files waiting for a child
        self._children: dict[str, ParseChild] = {}  # by fileloc
        self._next_scan: float | None = None  # None: scan at the next step

    def filenos(self) -> list[int]:
        return [child.fileno() for child in self._children.values()]

    def next_due(self) -> float | None:
        """When `step` should next run; a time already past (0.0) means at once."""
        if self._next_scan is None:
            return 0.0
        if self._startable() and len(self._children) < self._max_parallel:
            return 0.0
        return min([self._next_scan, *(child.deadline for child in self._children.values())])

    def step(self, now: float) -> list[FileParseResult]:
        """One pass: rescan if the interval has passed, collect finished children, start more."""
        results: list[FileParseResult] = []
        if self._next_scan is None or now >= self._next_scan:
            results += self._rescan(now)
        results += self._collect(now)
        self._start_children(now)
        return results

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

    def _rescan(self, now: float) -> list[FileParseResult]:
        self._next_scan = now + self._interval
        changes = self._tracker.scan()
        for fileloc in [*changes.added, *changes.changed]:
            self._queue[fileloc] = None
        results: list[FileParseResult] = []
        for fileloc in changes.deleted:
            self._queue.pop(fileloc, None)
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
                results.append(result)
        return results

    def _startable(self) -> list[str]:
        # A file changed while its child was running waits for that child to finish first.
        return [fileloc for fileloc in self._queue if fileloc not in self._children]

    def _start_children(self, now: float) -> None:
        sys_path = [str(folder) for folder in self._folders if folder.is_dir()]
        for fileloc in self._startable():
            if len(self._children) >= self._max_parallel:
                return
            self._children[fileloc] = ParseChild(
                fileloc, timeout=self._import_timeout, now=now, sys_path=sys_path
            )
            del self._queue[fileloc]
