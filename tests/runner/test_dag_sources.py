"""runner.dag_sources: which text of its DAG file a try imports. Real files in tmp_path; the
version reader is a seam we own (a function counting its calls); the database behind it is
tested in tests/runner/test_source_fetch.py and end to end in tests/executors."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from slipstream.authoring.loading import source_module_name
from slipstream.runner.dag_cache import DagFileCache
from slipstream.runner.dag_sources import (
    DagSources,
    DagSourceUnavailable,
    explain_import_error,
)
from tests.runner.support import make_workload

V1 = 'from slipstream import DAG\nDAG("d", schedule=None, description="v1")\n'
V2 = 'from slipstream import DAG\nDAG("d", schedule=None, description="v2")\n'


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Versions:
    """Stored texts by version id, and every read of them."""

    def __init__(self, texts: dict[int, str | None]) -> None:
        self.texts = texts
        self.reads: list[int] = []

    def __call__(self, version_id: int) -> str | None:
        self.reads.append(version_id)
        return self.texts[version_id]


@pytest.fixture
def dag_file(tmp_path: Path) -> Path:
    path = tmp_path / "dags" / "d.py"
    path.parent.mkdir()
    path.write_text(V1)
    return path


def test_a_file_with_the_version_s_digest_is_imported_and_nothing_is_read(dag_file: Path) -> None:
    versions = Versions({1: V1})
    sources = DagSources(versions)
    workload = make_workload(dag_file, "t", version_id=1, source_sha256=sha(V1))
    resolved = sources.resolve(workload)
    assert resolved.error is None
    assert resolved.workload.source is None
    assert resolved.workload.source_origin == (
        f"DAG code: the file {dag_file} (the SHA-256 of DAG 'd' version 1)"
    )
    assert versions.reads == [] and sources.fetches == 0


def test_a_version_without_a_recorded_digest_uses_the_file_unchecked(dag_file: Path) -> None:
    versions = Versions({1: V2})
    resolved = DagSources(versions).resolve(make_workload(dag_file, "t", version_id=1))
    assert resolved.workload.source is None
    assert "not checked: the SHA-256 of DAG 'd' version 1 is not recorded" in (
        resolved.workload.source_origin
    )
    assert versions.reads == []


def test_a_missing_file_is_read_from_the_database_once(dag_file: Path) -> None:
    versions = Versions({1: V1})
    sources = DagSources(versions)
    dag_file.unlink()
    workload = make_workload(dag_file, "t", version_id=1, source_sha256=sha(V1))
    first = sources.resolve(workload)
    assert first.error is None and first.workload.source == V1
    assert first.workload.source_origin == (
        f"DAG code: the text of DAG 'd' version 1, read from the metadata database "
        f"(no file {dag_file} here)"
    )
    again = sources.resolve(workload)
    assert again.workload.source == V1
    assert "kept from an earlier read of the metadata database" in again.workload.source_origin
    assert versions.reads == [1] and sources.fetches == 1


def test_a_file_of_another_version_gives_way_to_the_pinned_text(dag_file: Path) -> None:
    versions = Versions({1: V1})
    sources = DagSources(versions)
    workload = make_workload(dag_file, "t", version_id=1, source_sha256=sha(V1))
    assert sources.resolve(workload).workload.source is None
    dag_file.write_text(V2)  # the file moves on; the run stays on version 1
    stat = dag_file.stat()
    os.utime(dag_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    resolved = sources.resolve(workload)
    assert resolved.workload.source == V1
    assert f"(the file {dag_file} here is not it)" in resolved.workload.source_origin
    # Its DAG is that version's, not the file's.
    dag = DagFileCache().dag_for(resolved.workload)
    assert not isinstance(dag, BaseException) and dag.description == "v1"


def test_text_sent_by_the_scheduler_is_used_as_it_is(dag_file: Path) -> None:
    versions = Versions({1: V1})
    workload = make_workload(dag_file, "t", version_id=1, source_sha256=sha(V1), source=V1)
    resolved = DagSources(versions).resolve(workload)
    assert resolved.workload.source == V1
    assert "sent with the try" in resolved.workload.source_origin
    assert versions.reads == []


def test_the_kept_versions_are_bounded_least_recently_used_first(dag_file: Path) -> None:
    dag_file.unlink()
    versions = Versions({1: "# one", 2: "# two", 3: "# three"})
    sources = DagSources(versions, size=2)
    for version_id in (1, 2, 1, 3):  # 2 is then the least recently used
        sources.resolve(make_workload(dag_file, "t", version_id=version_id))
    assert sources.cached_versions() == [1, 3]
    assert versions.reads == [1, 2, 3]
    sources.resolve(make_workload(dag_file, "t", version_id=2))
    assert sources.cached_versions() == [3, 2]
    assert versions.reads == [1, 2, 3, 2] and sources.fetches == 4
    with pytest.raises(ValueError, match="at least one"):
        DagSources(versions, size=0)


def test_a_version_with_no_stored_text_fails_naming_the_dags_folder(dag_file: Path) -> None:
    dag_file.unlink()
    resolved = DagSources(Versions({1: None})).resolve(make_workload(dag_file, "t", version_id=1))
    assert isinstance(resolved.error, ImportError)
    assert str(resolved.error) == (
        f"no file {dag_file} here, and the metadata database holds no text of DAG 'd' "
        "version 1: share or sync the DAGs folder (SLIPSTREAM_DAGS_FOLDER) with this worker"
    )


def test_a_database_that_cannot_answer_fails_the_try_saying_so(dag_file: Path) -> None:
    def unreachable(version_id: int) -> str | None:
        raise DagSourceUnavailable(f"could not read version {version_id}'s text: refused")

    dag_file.unlink()
    resolved = DagSources(unreachable).resolve(make_workload(dag_file, "t", version_id=4))
    assert isinstance(resolved.error, DagSourceUnavailable)
    assert str(resolved.error) == "could not read version 4's text: refused"


def test_without_a_reader_or_a_version_the_file_is_imported_as_before(dag_file: Path) -> None:
    dag_file.unlink()
    workload = make_workload(dag_file, "t", version_id=1, source_sha256=sha(V1))
    resolved = DagSources(None).resolve(workload)
    assert resolved.workload == workload and resolved.error is None
    unversioned = make_workload(dag_file, "t")
    assert DagSources(Versions({})).resolve(unversioned).workload == unversioned
    # Its import then says what is wrong, as it always did.
    assert isinstance(DagFileCache().dag_for(resolved.workload), FileNotFoundError)


def test_a_missing_module_of_text_from_the_database_is_explained(dag_file: Path) -> None:
    error = ModuleNotFoundError("No module named 'helpers'", name="helpers")
    from_file = make_workload(dag_file, "t", version_id=3)
    assert explain_import_error(from_file, error) is error
    from_database = make_workload(dag_file, "t", version_id=3, source="import helpers\n")
    explained = explain_import_error(from_database, error)
    assert isinstance(explained, ModuleNotFoundError) and explained.name == "helpers"
    assert explained.__cause__ is error
    assert str(explained) == (
        "No module named 'helpers': this try runs the text of DAG 'd' version 3 from the "
        f"metadata database, which holds the DAG file {dag_file} alone. A DAG file that "
        "imports modules beside it needs its DAGs folder on the worker: share or sync "
        "SLIPSTREAM_DAGS_FOLDER with this worker (a package: install it here)"
    )
    other = ValueError("bad")
    assert explain_import_error(from_database, other) is other


def test_dags_imported_from_text_are_bounded_with_their_modules(dag_file: Path) -> None:
    cache = DagFileCache(pinned_size=2)
    texts = {f"hash{n}": V1.replace("v1", f"text {n}") for n in range(3)}
    for tag, text in texts.items():
        dag = cache.get_dag(str(dag_file), "d", source=text, version_hash=tag)
        assert dag.description == text.split('description="')[1].split('"')[0]
    assert source_module_name(dag_file, "hash0") not in sys.modules
    assert source_module_name(dag_file, "hash1") in sys.modules
    assert source_module_name(dag_file, "hash2") in sys.modules
    generation = cache.generation
    cache.get_dag(str(dag_file), "d", source=texts["hash1"], version_hash="hash1")
    assert cache.generation == generation  # still kept: not imported again
    cache.get_dag(str(dag_file), "d", source=texts["hash0"], version_hash="hash0")
    assert cache.generation == generation + 1
    assert source_module_name(dag_file, "hash2") not in sys.modules  # the least recent one
    for tag in ("hash0", "hash1"):
        sys.modules.pop(source_module_name(dag_file, tag), None)
