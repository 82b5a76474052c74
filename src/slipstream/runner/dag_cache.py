"""DAG files imported once per process and kept while unchanged, so a warm worker forks each try
from an already-imported DAG instead of importing it again.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence

from slipstream.authoring.dag import DAG
from slipstream.authoring.loading import (
    load_dags_from_file,
    load_dags_from_source,
    source_module_name,
)
from slipstream.authoring.secrets import SecretsBackendFactory, use_secrets
from slipstream.compat.airflow import install_airflow_hook
from slipstream.core.records import Workload
from slipstream.errors import DagNotFound
from slipstream.runner.dag_sources import DEFAULT_SOURCE_CACHE_SIZE

DagLoader = Callable[[str], Sequence[DAG]]


class DagFileCache:
    """DAGs by file, keyed by (mtime_ns, size): a changed file is imported again.

    Import failures are not cached: the next try imports again, as a fixed file or a
    now-installed module may make it work. DAGs imported from a version's text (not the file)
    are kept for the `pinned_size` versions used last.
    """

    def __init__(
        self,
        loader: DagLoader = load_dags_from_file,
        *,
        secrets: SecretsBackendFactory | None = None,
        pinned_size: int = DEFAULT_SOURCE_CACHE_SIZE,
        folders: Sequence[str] = (),
    ) -> None:
        self._loader = loader
        # Put on sys.path before the first import, as the parser does (and Airflow): DAG
        # files import helper modules that sit beside them in their folders.
        self._folders = [str(folder) for folder in folders]
        # What a DAG file's top-level Variable.get reads beyond the environment.
        self._secrets = secrets
        self._files: dict[str, tuple[tuple[int, int], dict[str, DAG]]] = {}
        # Versions imported from their text, by version hash, least recently used first: the
        # file they stand for, and their DAGs.
        self._pinned: OrderedDict[str, tuple[str, dict[str, DAG]]] = OrderedDict()
        self._pinned_size = pinned_size
        # Counts imports: a process forked at generation N holds exactly this cache if the
        # generation is still N (see runner.child.fork_spare).
        self.generation = 0

    def get_dag(
        self, path: str, dag_id: str, *, source: str | None = None, version_hash: str = ""
    ) -> DAG:
        """The DAG `dag_id` defined in `path` (or in `source`, an earlier text of that file,
        kept by its version hash); raises what the import raised, or DagNotFound."""
        if source is not None:
            pinned = self._pinned.get(version_hash)
            if pinned is None:
                self.generation += 1
                self._make_folders_importable()
                install_airflow_hook()
                with use_secrets(self._secrets):
                    loaded = load_dags_from_source(source, path, tag=version_hash)
                pinned = self._pinned[version_hash] = (path, {dag.dag_id: dag for dag in loaded})
                while len(self._pinned) > self._pinned_size:
                    evicted, (evicted_path, _) = self._pinned.popitem(last=False)
                    # Its module too, or the bound would not bound what the worker holds.
                    sys.modules.pop(source_module_name(evicted_path, evicted), None)
            self._pinned.move_to_end(version_hash)
            try:
                return pinned[1][dag_id]
            except KeyError:
                raise DagNotFound(dag_id) from None
        stat = os.stat(path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        entry = self._files.get(path)
        if entry is None or entry[0] != stamp:
            self._files.pop(path, None)
            self.generation += 1
            self._make_folders_importable()
            # DAG files written for Airflow import `airflow`: served by Slipstream in any
            # process that loads them (a worker, `dags test`), and only there.
            install_airflow_hook()
            with use_secrets(self._secrets):
                dags = {dag.dag_id: dag for dag in self._loader(path)}
            entry = self._files[path] = (stamp, dags)
        try:
            return entry[1][dag_id]
        except KeyError:
            raise DagNotFound(dag_id) from None

    def _make_folders_importable(self) -> None:
        if self._folders:
            sys.path[:0] = [folder for folder in self._folders if folder not in sys.path]
            self._folders = []

    def dag_for(self, workload: Workload) -> DAG | BaseException:
        """The workload's DAG (its pinned text when it carries one), or what importing it
        raised: run_try logs and reports that like any other failure of the try."""
        try:
            return self.get_dag(
                workload.fileloc,
                workload.dag_id,
                source=workload.source,
                version_hash=workload.version_hash,
            )
        except (Exception, SystemExit) as exc:
            return exc
