"""`slipstream pools ...` and `slipstream events list` in-process against a real SQLite home:
Airflow's arguments and file format, bad input refused with a message and a non-zero exit, and
an audit entry per change, none per refusal."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from tests.cli.conftest import Cli


def pools(slipstream: Cli) -> dict[str, dict[str, object]]:
    result = slipstream("pools", "list", "-o", "json")
    assert result.exit_code == 0, result.output
    return {row["pool"]: row for row in json.loads(result.stdout)}


def audit(slipstream: Cli, *extra: str) -> list[dict[str, object]]:
    result = slipstream("events", "list", "-o", "json", *extra)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_set_get_list_delete(slipstream: Cli) -> None:
    assert set(pools(slipstream)) == {"default_pool"}
    made = slipstream("pools", "set", "etl", "3", "the ETL pool", "--include-deferred")
    assert made.exit_code == 0, made.output
    assert "Pool etl created" in made.stdout
    got = slipstream("pools", "get", "etl", "-o", "json")
    (row,) = json.loads(got.stdout)
    assert row == {
        "pool": "etl", "slots": 3, "description": "the ETL pool", "include_deferred": True,
        "running_slots": 0, "queued_slots": 0, "scheduled_slots": 0, "open_slots": 3,
    }  # fmt: skip
    assert slipstream("pools", "set", "etl", "5", "bigger").exit_code == 0
    assert pools(slipstream)["etl"]["slots"] == 5
    table = slipstream("pools", "list")
    assert "etl" in table.stdout and "default_pool" in table.stdout
    deleted = slipstream("pools", "delete", "etl")
    assert deleted.exit_code == 0 and "Pool etl deleted" in deleted.stdout
    assert set(pools(slipstream)) == {"default_pool"}
    rows = audit(slipstream)
    assert [r["event"] for r in rows] == ["pool_delete", "pool_set", "pool_set"]  # newest first
    assert {r["owner"] for r in rows} == {getpass.getuser()}


def test_refusals_exit_non_zero_and_write_nothing(slipstream: Cli) -> None:
    for args, code, message in (
        (("pools", "get", "nope"), 3, "Pool with name:'nope' not found"),
        (("pools", "delete", "nope"), 3, "not found"),
        (("pools", "delete", "default_pool"), 2, "Default Pool can't be deleted"),
        (("pools", "set", "x", "--", "-1", "d"), 2, "slots=-1"),
        (("pools", "set", " ", "1", "d"), 2, "Pool name shouldn't be empty"),
    ):
        result = slipstream(*args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
    not_a_number = slipstream("pools", "set", "x", "many", "d")
    assert not_a_number.exit_code == 2 and "many" in not_a_number.output
    assert set(pools(slipstream)) == {"default_pool"}
    assert audit(slipstream) == []


def test_export_then_import_round_trips(slipstream: Cli, tmp_path: Path) -> None:
    slipstream("pools", "set", "a", "2", "first")
    slipstream("pools", "set", "b", "7", "second", "--include-deferred")
    out = tmp_path / "pools.json"
    exported = slipstream("pools", "export", str(out))
    assert exported.exit_code == 0 and "Exported 3 pools" in exported.stdout
    data = json.loads(out.read_text())
    assert data["b"] == {"slots": 7, "description": "second", "include_deferred": True}
    data["a"]["slots"] = 9
    data["c"] = {"slots": 1, "description": "new"}
    out.write_text(json.dumps(data))
    imported = slipstream("pools", "import", str(out))
    assert imported.exit_code == 0 and "Uploaded 4 pool(s)" in imported.stdout
    found = pools(slipstream)
    assert (found["a"]["slots"], found["c"]["slots"], found["b"]["include_deferred"]) == (
        9,
        1,
        True,
    )


def test_a_bad_import_changes_nothing(slipstream: Cli, tmp_path: Path) -> None:
    slipstream("pools", "set", "a", "2", "first")
    before = len(audit(slipstream))
    cases = {
        "not_json.json": "{nope",
        "list.json": "[1, 2]",
        "bad_slots.json": json.dumps({"a": {"slots": 99}, "b": {"slots": "x"}}),
        "no_slots.json": json.dumps({"a": {"slots": 99}, "b": {"description": "d"}}),
        "unknown.json": json.dumps({"a": {"slots": 99, "colour": "red"}}),
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = slipstream("pools", "import", str(path))
        assert result.exit_code == 2, (name, result.output)
        assert result.stderr.startswith("Error: "), name
    missing = slipstream("pools", "import", str(tmp_path / "absent.json"))
    assert missing.exit_code == 2
    assert pools(slipstream)["a"]["slots"] == 2  # nothing half-written
    assert len(audit(slipstream)) == before


def test_events_list_filters(slipstream: Cli) -> None:
    slipstream("pools", "set", "a", "2", "first")
    slipstream(
        "users", "create", "--username", "eve", "--password", "Pa55word-eve", "--role",
        "Viewer", "--email", "eve@example.com", "--firstname", "E", "--lastname", "V",
    )  # fmt: skip
    assert [r["event"] for r in audit(slipstream, "--event", "user_create")] == ["user_create"]
    assert len(audit(slipstream, "--limit", "1")) == 1
    assert "Pa55word-eve" not in slipstream("events", "list").stdout
    bad = slipstream("events", "list", "--limit", "0")
    assert bad.exit_code == 2
