"""Noticing at once that something under the DAG folders changed: inotify where the platform has
it, so a saved file is parsed within milliseconds instead of at the next periodic scan.

It only says "look now"; what changed is still found by the processor's scan of file stamps,
so a lost or coalesced event costs nothing but latency, and the periodic scan remains the net.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Events that can change which DAG files exist or what they hold. Plain IN_MODIFY is left out:
# a file being written sends many, and IN_CLOSE_WRITE follows once it is whole.
_FILE_EVENTS = (
    "CLOSE_WRITE",
    "CREATE",
    "DELETE",
    "MOVED_FROM",
    "MOVED_TO",
    "ATTRIB",
    "DELETE_SELF",
    "MOVE_SELF",
)


class FolderWatcher:
    """Watches every directory under `folders`; `fileno()` is None when watching is not
    possible here (not Linux, inotify missing, or the watch limit reached)."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self._inotify: Any = None
        self._flags: Any = None
        self._mask = 0
        self._paths: dict[int, str] = {}  # watch descriptor -> the directory it watches
        if sys.platform != "linux":
            return
        try:
            import inotify_simple

            self._flags = inotify_simple.flags
            for name in _FILE_EVENTS:
                self._mask |= getattr(inotify_simple.flags, name)
            self._inotify = inotify_simple.INotify(nonblocking=True)
        except (ImportError, OSError) as exc:
            log.warning("cannot watch the DAG folders (%s); scanning them periodically", exc)
            self._inotify = None
            return
        for folder in folders:
            self._watch_tree(str(folder))

    @property
    def is_watching(self) -> bool:
        return self._inotify is not None

    def fileno(self) -> int | None:
        return None if self._inotify is None else int(self._inotify.fileno())

    def drain(self) -> bool:
        """Read what has arrived without blocking; True if any of it may matter."""
        if self._inotify is None:
            return False
        flags = self._flags
        relevant = False
        try:
            events = self._inotify.read(timeout=0)
        except OSError:
            return True
        for event in events:
            if event.mask & flags.Q_OVERFLOW:
                relevant = True
                continue
            if event.mask & flags.ISDIR and event.mask & (flags.CREATE | flags.MOVED_TO):
                # A new folder may already hold files: watch it, and let the scan find them.
                self._watch_tree(os.path.join(self._path_of(event.wd), event.name))
            folder_event = event.mask & (flags.ISDIR | flags.DELETE_SELF | flags.MOVE_SELF)
            relevant = relevant or bool(folder_event) or event.name.endswith(".py")
        return bool(relevant)

    def close(self) -> None:
        if self._inotify is not None:
            with contextlib.suppress(OSError):
                self._inotify.close()
            self._inotify = None

    def _watch_tree(self, root: str) -> None:
        if not os.path.isdir(root):
            return
        for dirpath, dirnames, _ in os.walk(root, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
            try:
                wd = self._inotify.add_watch(dirpath, self._mask)
            except OSError as exc:
                # ENOSPC: fs.inotify.max_user_watches is reached. The periodic scan still
                # finds every change, a little later.
                log.warning("cannot watch %s (%s); it is scanned periodically", dirpath, exc)
                continue
            self._paths[wd] = dirpath

    def _path_of(self, wd: int) -> str:
        return self._paths.get(wd, "")
