"""Which text of its DAG file a try imports: the worker's own copy of the file when it is the
very version the run is pinned to (the same SHA-256 as that version's), else that version's text
from the metadata database, read once per version and kept in a small LRU.

So a worker needs no DAG folder of its own, and a run keeps its version even when the file on
this worker has changed or gone. A shared or synced folder keeps working as before: a matching
file is imported from disk, and nothing is read from the database. What reads a version's text
is given to `DagSources` (the worker reads it in a throwaway child: runner.source_fetch), so
this module never touches the database itself.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from slipstream.core.records import Workload

# Versions whose text a worker keeps. A run pinned to an older version needs it for each of its
# tries; 64 covers every version a worker runs at once in practice, at ~64 DAG files' text.
DEFAULT_SOURCE_CACHE_SIZE = 64
# Files whose digest is remembered (by path, checked against the file's stat each time).
_DIGEST_CACHE_SIZE = 1024

DAGS_FOLDER_SETTING = "SLIPSTREAM_DAGS_FOLDER"


class DagSourceReader(Protocol):
    """Reads stored DAG versions' text (services.dag_source_reader, in the fetching child)."""

    def source(self, version_id: int) -> str | None:
        """The DAG file's text as parsed for this version; None when none is stored."""
        ...

    def close(self) -> None: ...


# A picklable recipe for a DagSourceReader: it travels to each worker over its socket.
DagSourceReaderFactory = Callable[[], DagSourceReader]
# What DagSources calls to read a version's text: None when the version has none stored;
# raises DagSourceUnavailable when it cannot be read.
SourceFetch = Callable[[int], str | None]


class DagSourceUnavailable(RuntimeError):
    """A version's text could not be read from the database (unreachable, too slow...)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """The workload as its try will run it (with `source` set when the text is not the local
    file's, and `source_origin` saying where it came from), or why its DAG cannot be loaded."""

    workload: Workload
    error: BaseException | None = None


K = TypeVar("K")
V = TypeVar("V")


class _Lru(OrderedDict[K, V]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_fresh(self, key: K) -> V | None:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class DagSources:
    """One worker's choice of DAG text per try. `fetch` is None where nothing may be read from
    the database: a try whose file is missing or different then imports what there is."""

    def __init__(self, fetch: SourceFetch | None, *, size: int = DEFAULT_SOURCE_CACHE_SIZE) -> None:
        if size < 1:
            raise ValueError("a DAG source cache holds at least one version")
        self._fetch = fetch
        self._texts: _Lru[int, str] = _Lru(size)
        self._digests: _Lru[str, tuple[tuple[int, int, int], str]] = _Lru(_DIGEST_CACHE_SIZE)
        self.fetches = 0  # versions read from the database so far (what the LRU saves)

    def cached_versions(self) -> list[int]:
        """The versions whose text is kept, least recently used first."""
        return list(self._texts)

    def resolve(self, workload: Workload) -> Resolved:
        what = _version(workload)
        if workload.source is not None:
            # The scheduler had the text at hand (the file has moved on since the run began).
            origin = (
                f"DAG code: the text of {what}, from the metadata database, sent with the try "
                "(the DAG file has changed since the run started)"
            )
            return Resolved(replace(workload, source_origin=origin))
        path, version_id = workload.fileloc, workload.version_id
        digest = self._digest(path)
        if digest is not None and workload.source_sha256 in (None, digest):
            checked = (
                f"not checked: the SHA-256 of {what} is not recorded"
                if workload.source_sha256 is None
                else f"the SHA-256 of {what}"
            )
            origin = f"DAG code: the file {path} ({checked})"
            return Resolved(replace(workload, source_origin=origin))
        why = f"no file {path} here" if digest is None else f"the file {path} here is not it"
        if version_id is None or self._fetch is None:
            return Resolved(workload)  # what there is: its import says what is wrong with it
        text = self._texts.get_fresh(version_id)
        how = "kept from an earlier read of the metadata database"
        if text is None:
            try:
                text = self._fetch(version_id)
            except DagSourceUnavailable as exc:
                return Resolved(workload, exc)
            self.fetches += 1
            if text is None:
                return Resolved(
                    workload,
                    ImportError(
                        f"{why}, and the metadata database holds no text of {what}: share or "
                        f"sync the DAGs folder ({DAGS_FOLDER_SETTING}) with this worker"
                    ),
                )
            self._texts.put(version_id, text)
            how = "read from the metadata database"
        origin = f"DAG code: the text of {what}, {how} ({why})"
        return Resolved(replace(workload, source=text, source_origin=origin))

    def _digest(self, path: str) -> str | None:
        """SHA-256 of the file's bytes; None when there is no readable file. Read again only
        when its stat changed."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        known = self._digests.get_fresh(path)
        if known is not None and known[0] == stamp:
            return known[1]
        try:
            with open(path, "rb") as file:
                digest = hashlib.sha256(file.read()).hexdigest()
        except OSError:
            return None
        self._digests.put(path, (stamp, digest))
        return digest


def explain_import_error(workload: Workload, error: BaseException) -> BaseException:
    """A module that a DAG's text from the database imports is not to be found on this worker:
    most likely a helper beside the file in its folder, which the database does not hold."""
    if workload.source is None or not isinstance(error, ModuleNotFoundError):
        return error
    explained = ModuleNotFoundError(
        f"{error}: this try runs the text of {_version(workload)} from the metadata database, "
        f"which holds the DAG file {workload.fileloc} alone. A DAG file that imports modules "
        f"beside it needs its DAGs folder on the worker: share or sync {DAGS_FOLDER_SETTING} "
        "with this worker (a package: install it here)",
        name=error.name,
    )
    explained.__cause__ = error
    return explained


def _version(workload: Workload) -> str:
    if workload.version_id is None:
        return f"DAG {workload.dag_id!r}'s version"
    return f"DAG {workload.dag_id!r} version {workload.version_id}"
