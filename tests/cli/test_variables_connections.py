"""`slipstream variables`, `connections` and `rotate-fernet-key` in-process against a real
SQLite home: Airflow's arguments, round trips through files, bad input refused with a message
and a non-zero exit, nothing half-written; key rotation and a changed key's clear error."""

from __future__ import annotations

import base64
import json
import os
import stat

from sqlalchemy import select

from slipstream.store.db import Database
from slipstream.store.tables import variables
from tests.cli.conftest import Cli

OLD = base64.urlsafe_b64encode(b"o" * 32).decode()
NEW = base64.urlsafe_b64encode(b"n" * 32).decode()


def test_variables_round_trip(slipstream: Cli) -> None:
    assert slipstream("variables", "set", "plain", "hello", "--description", "d").exit_code == 0
    assert slipstream("variables", "set", "cfg", '{"a": [1, 2]}', "--json").exit_code == 0
    assert slipstream("variables", "get", "plain").stdout == "hello\n"
    assert json.loads(slipstream("variables", "get", "cfg", "--json").stdout) == {"a": [1, 2]}
    assert slipstream("variables", "get", "nope", "--default", "dflt").stdout == "dflt\n"
    missing = slipstream("variables", "get", "nope")
    assert missing.exit_code != 0 and "'nope' not found" in missing.stderr
    listed = json.loads(slipstream("variables", "list", "-o", "json").stdout)
    assert listed == [{"key": "cfg"}, {"key": "plain"}]
    exported = slipstream.home / "vars.json"
    assert slipstream("variables", "export", str(exported)).exit_code == 0
    assert stat.S_IMODE(os.stat(exported).st_mode) == 0o600
    document = json.loads(exported.read_text())
    assert document == {"cfg": {"a": [1, 2]}, "plain": {"value": "hello", "description": "d"}}
    assert slipstream("variables", "delete", "plain").exit_code == 0
    assert slipstream("variables", "delete", "plain").exit_code != 0
    imported = slipstream("variables", "import", str(exported), "-a", "skip")
    assert imported.exit_code == 0, imported.output
    assert "1 created" in imported.stdout and "1 skipped" in imported.stdout
    assert slipstream("variables", "get", "plain").stdout == "hello\n"


def test_variables_import_fail_writes_nothing(slipstream: Cli) -> None:
    slipstream("variables", "set", "taken", "old")
    source = slipstream.home / "in.json"
    source.write_text(json.dumps({"fresh": "x", "taken": "new"}))
    result = slipstream("variables", "import", str(source), "--action-on-existing-key", "fail")
    assert result.exit_code != 0 and "'taken' already exists" in result.stderr
    assert slipstream("variables", "get", "fresh").exit_code != 0
    assert slipstream("variables", "get", "taken").stdout == "old\n"
    source.write_text("[not json")
    bad = slipstream("variables", "import", str(source))
    assert bad.exit_code != 0 and "not valid JSON" in bad.stderr
    assert slipstream("variables", "set", "k", "{", "--json").exit_code != 0


def test_connections_round_trip(slipstream: Cli) -> None:
    added = slipstream(
        "connections", "add", "pg", "--conn-uri", "postgres://etl:pa%2Fss@db.example:5433/wh"
    )
    assert added.exit_code == 0, added.output
    assert "pa/ss" not in added.stdout
    by_fields = slipstream(
        "connections", "add", "api", "--conn-type", "http", "--conn-host", "api.example",
        "--conn-password", "hunter22", "--conn-extra", '{"api_key": "k-123456"}',
    )  # fmt: skip
    assert by_fields.exit_code == 0, by_fields.output
    shown = json.loads(slipstream("connections", "get", "pg", "-o", "json").stdout)[0]
    assert shown["host"] == "db.example" and shown["port"] == 5433 and shown["login"] == "etl"
    assert shown["password"] == "***" and shown["schema"] == "wh"
    api = json.loads(slipstream("connections", "get", "api", "-o", "json").stdout)[0]
    assert json.loads(api["extra"]) == {"api_key": "***"}
    assert "hunter22" not in slipstream("connections", "list").stdout
    exported = slipstream.home / "conns.json"
    assert slipstream("connections", "export", str(exported)).exit_code == 0
    document = json.loads(exported.read_text())
    assert document["pg"]["password"] == "pa/ss"
    assert document["api"]["extra"] == {"api_key": "k-123456"}
    env_file = slipstream.home / "conns.env"
    assert slipstream("connections", "export", str(env_file)).exit_code == 0
    for conn_id in ("pg", "api"):
        assert slipstream("connections", "delete", conn_id).exit_code == 0
    imported = slipstream("connections", "import", str(env_file))
    assert imported.exit_code == 0, imported.output
    again = json.loads(slipstream("connections", "get", "pg", "-o", "json").stdout)[0]
    assert again["host"] == "db.example" and again["port"] == 5433
    skipped = slipstream("connections", "import", str(exported))
    assert "skipped 2 existing" in skipped.stdout


def test_connections_bad_input(slipstream: Cli) -> None:
    both = slipstream("connections", "add", "x", "--conn-uri", "http://h", "--conn-host", "h")
    assert both.exit_code != 0 and "--conn-host" in both.stderr
    no_type = slipstream("connections", "add", "x", "--conn-host", "h")
    assert no_type.exit_code != 0 and "--conn-type" in no_type.stderr
    bad_extra = slipstream("connections", "add", "x", "--conn-type", "a", "--conn-extra", "[1]")
    assert bad_extra.exit_code != 0 and "JSON object" in bad_extra.stderr
    bad_uri = slipstream("connections", "add", "x", "--conn-uri", "nonsense")
    assert bad_uri.exit_code != 0 and "invalid connection URI" in bad_uri.stderr
    assert slipstream("connections", "get", "x").exit_code != 0  # nothing was written
    slipstream("connections", "add", "dup", "--conn-type", "http")
    dup = slipstream("connections", "add", "dup", "--conn-type", "http")
    assert dup.exit_code != 0 and "'dup' already exists" in dup.stderr
    refused = slipstream("connections", "test", "dup")
    assert refused.exit_code != 0 and "disabled" in refused.stderr


def test_rotation_and_a_changed_key(slipstream: Cli) -> None:
    old_env = {**slipstream.env, "SLIPSTREAM_FERNET_KEY": OLD}
    old = Cli(slipstream.home, old_env)
    assert old("variables", "set", "v", "value-1").exit_code == 0
    old("connections", "add", "c", "--conn-type", "http", "--conn-password", "pw-1")
    new_only = Cli(slipstream.home, {**slipstream.env, "SLIPSTREAM_FERNET_KEY": NEW})
    failed = new_only("variables", "get", "v")
    assert failed.exit_code != 0
    assert "variable 'v' cannot be decrypted" in failed.stderr
    assert "does not match" in failed.stderr and "Traceback" not in failed.output
    with Database(slipstream.env["SLIPSTREAM_DATABASE_URL"]).read() as conn:
        before = conn.execute(select(variables.c.val)).scalar_one()
    both = Cli(slipstream.home, {**slipstream.env, "SLIPSTREAM_FERNET_KEY": f"{NEW},{OLD}"})
    rotated = both("rotate-fernet-key")
    assert rotated.exit_code == 0, rotated.output
    assert "1 variable(s) and 1 connection(s)" in rotated.stdout
    with Database(slipstream.env["SLIPSTREAM_DATABASE_URL"]).read() as conn:
        after = conn.execute(select(variables.c.val)).scalar_one()
    assert after != before and "value-1" not in after
    assert new_only("variables", "get", "v").stdout == "value-1\n"
    assert old("variables", "get", "v").exit_code != 0


def test_a_malformed_key_setting_is_refused(slipstream: Cli) -> None:
    bad = Cli(slipstream.home, {**slipstream.env, "SLIPSTREAM_FERNET_KEY": "short-secret"})
    result = bad("variables", "list")
    assert result.exit_code == 5 and "not a Fernet key" in result.stderr
    assert "short-secret" not in result.output
