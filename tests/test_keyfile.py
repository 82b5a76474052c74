"""keyfile: a secret key made once, readable by its owner only, and the same ever after."""

from __future__ import annotations

import stat
from pathlib import Path

from slipstream.keyfile import load_or_create_key


def test_a_key_is_made_once_with_mode_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / ".key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert [p.name for p in path.parent.iterdir()] == [".key"]  # no temporary file left


def test_an_empty_file_gets_a_key(tmp_path: Path) -> None:
    path = tmp_path / ".key"
    path.write_text("")
    key = load_or_create_key(path)
    assert len(key) == 32
    assert load_or_create_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
