"""DagFileSync over real DAG files, real parse children, and real SQLite and PostgreSQL."""

from __future__ import annotations

import os
import select
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slipstream.clock import FrozenClock
from slipstream.core.records import DagRecord, ImportErrorRecord
from slipstream.parsing.processor import DagFileProcessor
from slipstream.services.dag_files import DagFileSync, SyncSummary
from slipstream.store import dags as dags_store
from slipstream.store import import_errors
from slipstream.store.db import Database
from slipstream.wakeup import Hint, WakeupListener, WakeupSender

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

HEADER = """\
from datetime import datetime
from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import EmptyOperator
"""


def dag_block(dag_id: str, *task_ids: str, schedule: str = "@daily", extra: str = "") -> str:
    tasks = "".join(f'    EmptyOperator(task_id="{t}")\n' for t in task_ids or ("t",))
    return (
        f'with DAG("{dag_id}", schedule="{schedule}", start_date=datetime(2026, 1, 1){extra}):\n'
        + tasks
    )


def write(path: Path, *blocks: str, tail: str = "") -> str:
    """Write a DAG file and move its mtime a second ahead, so each edit is seen at once."""
    previous = path.stat().st_mtime_ns if path.exists() else time.time_ns()
    path.write_text(HEADER + "\n".join(blocks) + tail)
    os.utime(path, ns=(previous + 10**9, previous + 10**9))
    return str(path)


class Harness:
    def __init__(self, db: Database, folder: Path, **sync_options: object) -> None:
        self.db = db
        self.folder = folder
        self.clock = FrozenClock(NOW)
        self.processor = DagFileProcessor([folder], interval=0.05, import_timeout=10)
        self.sync = DagFileSync(
            db,
            self.processor,
            clock=self.clock,
            paused_at_creation=bool(sync_options.get("paused_at_creation", False)),
            wakeup=sync_options.get("wakeup"),  # type: ignore[arg-type]
        )

    def dag(self, dag_id: str) -> DagRecord:
        with self.db.read() as conn:
            record = dags_store.get_dag(conn, dag_id)
        assert record is not None, f"no DAG {dag_id!r}"
        return record

    def active(self) -> list[str]:
        with self.db.read() as conn:
            return [d.dag_id for d in dags_store.list_dags(conn)[0]]

    def errors(self) -> dict[str, ImportErrorRecord]:
        with self.db.read() as conn:
            return {e.filename: e for e in import_errors.list_errors(conn)[0]}

    def step_until(self, done: Callable[[], bool], *, within: float = 5.0) -> None:
        """Serve the sync as the scheduler loop does until `done` holds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.sync.step(time.monotonic())
            if done():
                return
            due = self.sync.next_due()
            wait = 0.05 if due is None else max(0.0, min(due - time.monotonic(), 0.05))
            select.select(self.sync.filenos(), [], [], wait)
        raise AssertionError(f"condition not met within {within} s")


@pytest.fixture
def harness(db: Database, tmp_path: Path) -> Iterator[Harness]:
    folder = tmp_path / "dags"
    folder.mkdir()
    h = Harness(db, folder)
    yield h
    h.processor.close()


def test_sync_now_adds_dags_and_records_broken_files(harness: Harness) -> None:
    two = write(harness.folder / "two.py", dag_block("alpha"), dag_block("beta"))
    broken = write(harness.folder / "broken.py", dag_block("broken"), tail="\ndef oops(:\n")
    summary = harness.sync.sync_now()
    assert summary == SyncSummary(files=2, added=2, errors=1)
    assert harness.active() == ["alpha", "beta"]
    alpha = harness.dag("alpha")
    assert alpha.fileloc == two
    assert alpha.last_parsed_at == NOW
    assert alpha.schedule == "@daily"
    assert not alpha.is_paused
    error = harness.errors()[broken]
    assert "SyntaxError" in error.stacktrace
    assert error.timestamp == NOW
    # Nothing changed since: a second sync has nothing to do.
    assert harness.sync.sync_now() == SyncSummary()


def test_fixing_a_broken_file_clears_its_error(harness: Harness) -> None:
    path = harness.folder / "d.py"
    write(path, dag_block("d"), tail="\nraise ValueError('half-written')\n")
    harness.sync.sync_now()
    assert "ValueError: half-written" in harness.errors()[str(path)].stacktrace
    assert harness.active() == []
    write(path, dag_block("d"))
    assert harness.sync.sync_now() == SyncSummary(files=1, added=1)
    assert harness.errors() == {}
    assert harness.active() == ["d"]


def test_breaking_a_file_keeps_its_last_good_version(harness: Harness) -> None:
    path = harness.folder / "d.py"
    write(path, dag_block("d"))
    harness.sync.sync_now()
    good = harness.dag("d")
    write(path, dag_block("d", "t", "new"), tail="\nimport does_not_exist\n")
    assert harness.sync.sync_now() == SyncSummary(files=1, errors=1)
    assert harness.dag("d") == good
    assert "ModuleNotFoundError" in harness.errors()[str(path)].stacktrace


def test_changed_file_makes_a_new_version_and_keeps_the_old(harness: Harness) -> None:
    path = harness.folder / "d.py"
    write(path, dag_block("d", "one"))
    harness.sync.sync_now()
    first = harness.dag("d")
    assert first.version_id is not None

    # Touching the file without changing it is not a new version.
    write(path, dag_block("d", "one"))
    assert harness.sync.sync_now() == SyncSummary(files=1)
    assert harness.dag("d").version_id == first.version_id

    write(path, dag_block("d", "one", "two"))
    assert harness.sync.sync_now() == SyncSummary(files=1, updated=1)
    second = harness.dag("d")
    assert second.version_id != first.version_id
    with harness.db.read() as conn:
        old = dags_store.get_version(conn, first.version_id)
        latest = dags_store.latest_version(conn, "d")
    assert old is not None
    assert [t["task_id"] for t in old.structure["tasks"]] == ["one"]
    assert latest is not None and latest.id == second.version_id
    assert {t["task_id"] for t in latest.structure["tasks"]} == {"one", "two"}


def test_dag_removed_from_file_becomes_inactive(harness: Harness) -> None:
    path = harness.folder / "pair.py"
    write(path, dag_block("keep"), dag_block("drop"))
    harness.sync.sync_now()
    write(path, dag_block("keep"))
    # The file's source changed, so "keep" has a new version too.
    assert harness.sync.sync_now() == SyncSummary(files=1, updated=1, deactivated=1)
    assert harness.active() == ["keep"]
    assert not harness.dag("drop").is_active
    # Putting it back brings back the same DAG, active again.
    write(path, dag_block("keep"), dag_block("drop"))
    assert harness.sync.sync_now() == SyncSummary(files=1, added=1, updated=1)
    assert harness.active() == ["drop", "keep"]


def test_deleted_file_deactivates_its_dags_and_clears_its_error(harness: Harness) -> None:
    good = write(harness.folder / "good.py", dag_block("good"))
    bad = write(harness.folder / "bad.py", dag_block("bad"), tail="\n1/0\n")
    harness.sync.sync_now()
    os.remove(good)
    os.remove(bad)
    assert harness.sync.sync_now() == SyncSummary(files=2, deactivated=1)
    assert harness.active() == []
    assert harness.errors() == {}


def test_changed_file_is_picked_up_by_stepping(harness: Harness) -> None:
    path = harness.folder / "d.py"
    write(path, dag_block("d", "one"))
    harness.step_until(lambda: harness.active() == ["d"])
    first = harness.dag("d").version_id
    write(path, dag_block("d", "one", "two"))
    started = time.monotonic()
    harness.step_until(lambda: harness.dag("d").version_id != first, within=2.0)
    assert time.monotonic() - started < 2.0


def test_hanging_file_times_out_without_blocking_others(db: Database, tmp_path: Path) -> None:
    hang = tmp_path / "hangs.py"
    hang.write_text("# dag\nimport time\ntime.sleep(60)\n")
    for name in ("a", "b", "c"):
        write(tmp_path / f"{name}.py", dag_block(name))
    processor = DagFileProcessor([tmp_path], interval=0.05, import_timeout=1, max_parallel=2)
    sync = DagFileSync(db, processor, clock=FrozenClock(NOW), paused_at_creation=False)
    try:
        summary = sync.sync_now()
    finally:
        processor.close()
    assert summary == SyncSummary(files=4, added=3, errors=1)
    with db.read() as conn:
        errors = import_errors.list_errors(conn)[0]
    assert [(e.filename, e.stacktrace) for e in errors] == [
        (str(hang), "DAG file import timed out after 1 s (SLIPSTREAM_DAG_IMPORT_TIMEOUT)")
    ]


def test_exiting_files_are_import_errors(harness: Harness) -> None:
    hard = write(harness.folder / "hard.py", dag_block("hard"), tail="\nimport os\nos._exit(1)\n")
    soft = write(harness.folder / "soft.py", dag_block("soft"), tail="\nimport sys\nsys.exit()\n")
    write(harness.folder / "fine.py", dag_block("fine"))
    assert harness.sync.sync_now() == SyncSummary(files=3, added=1, errors=2)
    errors = harness.errors()
    assert "exited with code 1" in errors[hard].stacktrace
    assert "SystemExit" in errors[soft].stacktrace
    assert harness.active() == ["fine"]


def test_duplicate_dag_id_across_files(harness: Harness) -> None:
    first = write(harness.folder / "a_first.py", dag_block("shared"))
    second = write(harness.folder / "b_second.py", dag_block("shared"), dag_block("own"))
    assert harness.sync.sync_now() == SyncSummary(files=2, added=2, errors=1)
    assert harness.dag("shared").fileloc == first
    assert harness.active() == ["own", "shared"]
    assert harness.errors()[second].stacktrace == (f"DAG id 'shared' is already defined in {first}")
    # The owner lets go: the file that was refused takes the DAG over in the same sync.
    os.remove(first)
    summary = harness.sync.sync_now()
    assert summary.added == 1 and summary.deactivated == 1
    assert harness.dag("shared").fileloc == second
    assert harness.dag("shared").is_active
    assert harness.errors() == {}


def test_dag_moved_between_files_in_one_edit(harness: Harness) -> None:
    old_home = harness.folder / "z_old.py"
    new_home = harness.folder / "a_new.py"
    write(old_home, dag_block("moving"), dag_block("staying"))
    harness.sync.sync_now()
    # The new home sorts first, so it is refused until the old home lets go in that sync.
    write(new_home, dag_block("moving"))
    write(old_home, dag_block("staying"))
    harness.sync.sync_now()
    assert harness.dag("moving").fileloc == str(new_home)
    assert harness.active() == ["moving", "staying"]
    assert harness.errors() == {}


def test_paused_at_creation(db: Database, tmp_path: Path) -> None:
    write(
        tmp_path / "d.py",
        dag_block("default"),
        dag_block("explicit", extra=", is_paused_upon_creation=False"),
    )
    h = Harness(db, tmp_path, paused_at_creation=True)
    h.sync.sync_now()
    assert h.dag("default").is_paused
    assert not h.dag("explicit").is_paused


def test_dags_of_files_deleted_while_nobody_watched_are_deactivated(
    db: Database, tmp_path: Path
) -> None:
    path = write(tmp_path / "d.py", dag_block("d"))
    bad = write(tmp_path / "bad.py", dag_block("bad"), tail="\n1/0\n")
    Harness(db, tmp_path).sync.sync_now()
    os.remove(path)
    os.remove(bad)
    # A new process (a restarted scheduler) has never scanned these files.
    restarted = Harness(db, tmp_path)
    assert restarted.sync.sync_now() == SyncSummary(files=2, deactivated=1)
    assert restarted.active() == []
    assert restarted.errors() == {}


def test_changes_wake_the_scheduler(db: Database, tmp_path: Path) -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as short:  # AF_UNIX paths are short
        listener = WakeupListener(Path(short) / "wake.sock")
        sender = WakeupSender(Path(short) / "wake.sock")
        try:
            path = tmp_path / "d.py"
            write(path, dag_block("a"), dag_block("b"))
            h = Harness(db, tmp_path, wakeup=sender)
            h.sync.sync_now()
            assert sorted(listener.drain(), key=str) == [
                Hint.dag_changed("a"),
                Hint.dag_changed("b"),
            ]
            h.sync.sync_now()
            assert listener.drain() == []
            write(path, dag_block("a", "changed"))
            h.sync.sync_now()
            assert sorted(listener.drain(), key=str) == [
                Hint.dag_changed("a"),
                Hint.dag_changed("b"),
            ]
        finally:
            sender.close()
            listener.close()
