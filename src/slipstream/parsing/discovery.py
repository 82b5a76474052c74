"""Finding DAG files under the DAG folders and noticing which were added, changed or deleted.

A candidate is a `*.py` file outside hidden directories and `__pycache__` whose bytes mention
"dag" in any case (Airflow's safe mode): importing every helper module would be slow and risky.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# (st_mtime_ns, st_size): cheap to read for every file on every scan, and an edit changes it.
Stamp = tuple[int, int]


@dataclass(frozen=True, slots=True)
class FileChanges:
    """What one scan found different from the previous one; each list is sorted."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.deleted)


@dataclass(slots=True)
class _Seen:
    stamp: Stamp | None  # None: unknown, so the next scan treats the file as changed
    is_dag_file: bool


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def python_files(folders: Sequence[Path]) -> Iterator[str]:
    """Absolute paths of the `.py` files under `folders`, following symlinks without looping."""
    visited: set[str] = set()
    for folder in folders:
        root = os.path.abspath(folder)
        if os.path.isfile(root):
            if root.endswith(".py"):
                yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in visited:  # a symlink back up the tree, or two folders that overlap
                dirnames.clear()
                continue
            visited.add(real)
            dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d) and d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py") and not _is_hidden(name):
                    yield os.path.join(dirpath, name)


def might_contain_dag(path: str) -> bool:
    """Airflow's safe-mode heuristic: a file that never says "dag" defines no DAG."""
    try:
        with open(path, "rb") as file:
            return b"dag" in file.read().lower()
    except OSError:
        return False


def _stamp(path: str) -> Stamp | None:
    try:
        stat = os.stat(path)
    except OSError:  # deleted between listing and stat, or unreadable
        return None
    return stat.st_mtime_ns, stat.st_size


class FileTracker:
    """Remembers each file's stamp between scans so a scan reports only what changed.

    Only files whose stamp moved are read again, so an idle folder costs one stat per file."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self._folders = list(folders)
        self._seen: dict[str, _Seen] = {}

    def scan(self) -> FileChanges:
        changes = FileChanges()
        present: set[str] = set()
        for path in python_files(self._folders):
            stamp = _stamp(path)
            if stamp is None:
                continue
            present.add(path)
            seen = self._seen.get(path)
            if seen is not None and seen.stamp == stamp:
                continue
            is_dag_file = might_contain_dag(path)
            was_dag_file = seen is not None and seen.is_dag_file
            self._seen[path] = _Seen(stamp, is_dag_file)
            if is_dag_file:
                (changes.changed if was_dag_file else changes.added).append(path)
            elif was_dag_file:  # edited until it no longer mentions a DAG
                changes.deleted.append(path)
        for path in sorted(self._seen.keys() - present):
            if self._seen.pop(path).is_dag_file:
                changes.deleted.append(path)
        changes.deleted.sort()
        return changes

    def invalidate(self, paths: Iterable[str]) -> None:
        """Forget what is known about `paths`: the next scan reports each as changed if it is
        still a DAG file, or as deleted if it is gone (even if it was never seen before)."""
        for path in paths:
            self._seen[path] = _Seen(stamp=None, is_dag_file=True)

    def dag_files(self) -> list[str]:
        """The DAG files as of the last scan."""
        return sorted(path for path, seen in self._seen.items() if seen.is_dag_file)
