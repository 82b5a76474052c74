"""The DAG folder watch on a real inotify: saved files, new folders and their files, deletions."""

from __future__ import annotations

import select
import sys
from pathlib import Path

import pytest

from slipstream.parsing.watcher import FolderWatcher

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify")


def changed(watcher: FolderWatcher, within: float = 5.0) -> bool:
    """Wait on the watch's fd, as the loop does, then ask whether anything matters."""
    fd = watcher.fileno()
    assert fd is not None
    if not select.select([fd], [], [], within)[0]:
        return False
    return watcher.drain()


def test_saves_new_folders_and_deletions_are_noticed(tmp_path: Path) -> None:
    watcher = FolderWatcher([tmp_path])
    try:
        assert watcher.is_watching
        (tmp_path / "a.py").write_text("# dag\n")
        assert changed(watcher)
        (tmp_path / "notes.txt").write_text("not python")
        assert not changed(watcher, within=0.5)  # not a Python file: no reason to look
        sub = tmp_path / "team"
        sub.mkdir()
        assert changed(watcher)
        # The new folder is watched too: a file saved in it is news.
        (sub / "b.py").write_text("# dag\n")
        assert changed(watcher)
        (tmp_path / "a.py").unlink()
        assert changed(watcher)
    finally:
        watcher.close()
    assert watcher.fileno() is None
