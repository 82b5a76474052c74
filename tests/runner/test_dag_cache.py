from __future__ import annotations

import os
from pathlib import Path

import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.loading import load_dags_from_file
from slipstream.errors import DagNotFound
from slipstream.runner.dag_cache import DagFileCache

SOURCE = 'from slipstream import DAG\nDAG("{dag_id}", schedule=None)\n'


def test_imports_once_until_the_file_changes(tmp_path: Path) -> None:
    loads: list[str] = []

    def loader(path: str) -> list[DAG]:
        loads.append(path)
        return load_dags_from_file(path)

    path = tmp_path / "f.py"
    path.write_text(SOURCE.format(dag_id="a"))
    cache = DagFileCache(loader)
    first = cache.get_dag(str(path), "a")
    assert cache.get_dag(str(path), "a") is first
    assert len(loads) == 1
    with pytest.raises(DagNotFound):
        cache.get_dag(str(path), "b")
    path.write_text(SOURCE.format(dag_id="b"))  # same size: the mtime tells it apart
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert cache.get_dag(str(path), "b").dag_id == "b"
    assert len(loads) == 2


def test_import_errors_are_raised_and_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "f.py"
    path.write_text("raise RuntimeError('not yet')\n")
    cache = DagFileCache()
    with pytest.raises(RuntimeError, match="not yet"):
        cache.get_dag(str(path), "a")
    path.write_text(SOURCE.format(dag_id="a") + "# fixed\n")
    assert cache.get_dag(str(path), "a").dag_id == "a"
