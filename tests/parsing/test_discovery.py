"""Finding DAG files and tracking their changes, on a real folder with real mtimes."""

from __future__ import annotations

import os
from pathlib import Path

from slipstream.parsing.discovery import FileTracker, might_contain_dag, python_files

DAG_TEXT = "from slipstream.authoring.dag import DAG\n"


def write(path: Path | str, text: str, *, mtime_ns: int | None = None) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return str(path)


def bump_mtime(path: str) -> None:
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_lists_python_files_skipping_hidden_and_pycache(tmp_path: Path) -> None:
    keep = [
        write(tmp_path / "a.py", DAG_TEXT),
        write(tmp_path / "sub" / "b.py", DAG_TEXT),
        write(tmp_path / "sub" / "deeper" / "c.py", "x = 1\n"),
    ]
    write(tmp_path / ".hidden.py", DAG_TEXT)
    write(tmp_path / ".git" / "d.py", DAG_TEXT)
    write(tmp_path / "__pycache__" / "e.py", DAG_TEXT)
    write(tmp_path / "notes.txt", DAG_TEXT)
    assert sorted(python_files([tmp_path])) == sorted(keep)


def test_follows_symlinks_without_looping(tmp_path: Path) -> None:
    target = write(tmp_path / "real" / "a.py", DAG_TEXT)
    (tmp_path / "real" / "loop").symlink_to(tmp_path / "real", target_is_directory=True)
    assert list(python_files([tmp_path / "real"])) == [target]


def test_a_folder_may_be_a_file_and_a_missing_folder_is_empty(tmp_path: Path) -> None:
    single = write(tmp_path / "one.py", DAG_TEXT)
    assert list(python_files([Path(single), tmp_path / "missing"])) == [single]


def test_safe_mode_needs_the_word_dag_in_any_case(tmp_path: Path) -> None:
    assert might_contain_dag(write(tmp_path / "a.py", "import airflow  # my_dag\n"))
    assert might_contain_dag(write(tmp_path / "b.py", "x = 'DAG'\n"))
    assert might_contain_dag(write(tmp_path / "c.py", "@Dag\ndef f(): ...\n"))
    assert not might_contain_dag(write(tmp_path / "d.py", "def helper():\n    return 1\n"))
    assert not might_contain_dag(str(tmp_path / "missing.py"))


def test_tracker_reports_added_changed_deleted(tmp_path: Path) -> None:
    tracker = FileTracker([tmp_path])
    a = write(tmp_path / "a.py", DAG_TEXT)
    b = write(tmp_path / "b.py", DAG_TEXT)
    helper = write(tmp_path / "helper.py", "def f(): ...\n")
    first = tracker.scan()
    assert (first.added, first.changed, first.deleted) == ([a, b], [], [])
    assert not tracker.scan()

    bump_mtime(a)
    os.remove(b)
    write(tmp_path / "c.py", DAG_TEXT)
    second = tracker.scan()
    assert (second.added, second.changed, second.deleted) == ([str(tmp_path / "c.py")], [a], [b])

    # A helper that starts mentioning DAGs becomes a DAG file; one that stops is gone.
    write(helper, "# builds a dag\n", mtime_ns=os.stat(helper).st_mtime_ns + 10**9)
    write(a, "x = 1\n", mtime_ns=os.stat(a).st_mtime_ns + 10**9)
    third = tracker.scan()
    assert (third.added, third.changed, third.deleted) == ([helper], [], [a])
    assert tracker.dag_files() == [str(tmp_path / "c.py"), helper]


def test_same_size_edit_is_seen_through_mtime(tmp_path: Path) -> None:
    tracker = FileTracker([tmp_path])
    path = write(tmp_path / "a.py", DAG_TEXT + "x = 1\n", mtime_ns=10**18)
    tracker.scan()
    write(path, DAG_TEXT + "x = 2\n", mtime_ns=10**18 + 1)
    assert tracker.scan().changed == [path]


def test_invalidate_rechecks_known_and_unknown_files(tmp_path: Path) -> None:
    tracker = FileTracker([tmp_path])
    a = write(tmp_path / "a.py", DAG_TEXT)
    tracker.scan()
    gone = str(tmp_path / "elsewhere" / "gone.py")
    tracker.invalidate([a, gone])
    changes = tracker.scan()
    assert (changes.added, changes.changed, changes.deleted) == ([], [a], [gone])
    assert not tracker.scan()
