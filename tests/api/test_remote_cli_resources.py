"""`slipstream pools|assets|variables|connections ... --server` against a real API server
(SQLite and PostgreSQL): the same output as the local commands on the server's home, the same
credentials and exit codes as the other remote commands, and a clear refusal wherever the API
cannot give what the command needs (a secret's value, a password)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from slipstream.cli.main import cli
from tests.api.conftest import ApiServer, free_port

pytestmark = pytest.mark.slow

ADMIN = ("resources_admin", "Resources-adm1n-pass")
VIEWER = ("resources_viewer", "Resources-v1ewer-pass")

DAGS = """
from datetime import datetime
from airflow.sdk import DAG, Asset, asset

@asset(schedule=None, uri="s3://remote/raw")
def raw():
    pass

with DAG("remote_uses_raw", schedule=[raw], start_date=datetime(2026, 1, 1)):
    pass
"""


@pytest.fixture(scope="module")
def server(module_home: ApiServer) -> ApiServer:
    (module_home.home / "dags" / "remote_assets.py").write_text(textwrap.dedent(DAGS))
    module_home.create_user(*ADMIN, "Admin")
    module_home.create_user(*VIEWER, "Viewer")
    assert module_home.sync_dags().errors == 0
    module_home.start()
    made = requests.post(
        f"{module_home.base}/api/v1/datasets/events",
        json={"dataset_uri": "s3://remote/raw", "extra": {"rows": 3}},
        auth=ADMIN,
        timeout=60,
    )
    assert made.status_code == 200, made.text
    return module_home


def remote(
    server: ApiServer,
    tmp_path: Path,
    *args: str,
    auth: tuple[str, str] | None = ADMIN,
    url: str | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """`slipstream ...` from a machine with no home of its own, credentials in the
    environment (as tests/api/test_remote_cli.py runs it)."""
    environment: dict[str, str | None] = {
        key: None for key in os.environ if key.startswith("SLIPSTREAM_")
    }
    environment |= {
        "SLIPSTREAM_HOME": str(tmp_path / "laptop"),
        "SLIPSTREAM_SERVER": url or server.base,
    }
    if auth is not None:
        environment |= {"SLIPSTREAM_USER": auth[0], "SLIPSTREAM_PASSWORD": auth[1]}
    environment |= env
    result = CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)
    return subprocess.CompletedProcess(
        ["slipstream", *args], result.exit_code, result.stdout, result.stderr
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


# -- pools ---------------------------------------------------------------------------------------


def test_pools_round_trip_with_the_local_output(server: ApiServer, tmp_path: Path) -> None:
    made = remote(server, tmp_path, "pools", "set", "remote_pool", "3", "made remotely")
    assert ok(made).startswith("Pool remote_pool created\n")
    assert "remote_pool | 3     | made remotely" in made.stdout
    # Setting again changes it (an upsert, as locally), with --include-deferred.
    ok(remote(server, tmp_path, "pools", "set", "remote_pool", "5", "bigger", "--include-deferred"))
    assert as_json(remote(server, tmp_path, "pools", "list", "-o", "json")) == as_json(
        server.slipstream("pools", "list", "-o", "json")
    )
    (got,) = as_json(remote(server, tmp_path, "pools", "get", "remote_pool", "-o", "json"))
    assert got["slots"] == 5 and got["description"] == "bigger" and got["include_deferred"]
    assert remote(server, tmp_path, "pools", "get", "remote_pool").stdout == ok(
        server.slipstream("pools", "get", "remote_pool")
    )

    # Export remotely == export locally; importing it back changes nothing.
    remote_file, local_file = tmp_path / "remote.json", tmp_path / "local.json"
    ok(remote(server, tmp_path, "pools", "export", str(remote_file)))
    ok(server.slipstream("pools", "export", str(local_file)))
    assert remote_file.read_text() == local_file.read_text()
    assert ok(remote(server, tmp_path, "pools", "import", str(remote_file))).startswith("Uploaded ")

    # A bad file is refused before anything is sent.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"first_ok": {"slots": 1}, "second": {"slots": -1}}))
    refused = remote(server, tmp_path, "pools", "import", str(bad))
    assert refused.returncode == 2 and "slots=-1" in refused.stderr
    assert remote(server, tmp_path, "pools", "get", "first_ok").returncode == 3

    deleted = remote(server, tmp_path, "pools", "delete", "remote_pool")
    assert ok(deleted) == "Pool remote_pool deleted\n"
    missing = remote(server, tmp_path, "pools", "get", "remote_pool")
    assert missing.returncode == 3
    assert missing.stderr == server.slipstream("pools", "get", "remote_pool").stderr


def test_default_pool_takes_new_slots_but_not_a_new_description(
    server: ApiServer, tmp_path: Path
) -> None:
    (current,) = as_json(server.slipstream("pools", "get", "default_pool", "-o", "json"))
    description = current["description"]
    resized = remote(server, tmp_path, "pools", "set", "default_pool", "77", description)
    assert "default_pool | 77" in ok(resized)
    renamed = remote(server, tmp_path, "pools", "set", "default_pool", "77", "another text")
    assert renamed.returncode == 2
    assert "Only slots and included_deferred can be modified on Default Pool" in renamed.stderr
    (after,) = as_json(server.slipstream("pools", "get", "default_pool", "-o", "json"))
    assert (after["slots"], after["description"]) == (77, description)
    ok(remote(server, tmp_path, "pools", "set", "default_pool", str(current["slots"]), description))


# -- assets --------------------------------------------------------------------------------------


def _without_name_and_group(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in ("name", "group")} for row in rows]


def test_assets_match_the_local_commands(server: ApiServer, tmp_path: Path) -> None:
    listed = as_json(remote(server, tmp_path, "assets", "list", "-o", "json"))
    local = as_json(server.slipstream("assets", "list", "-o", "json"))
    # Airflow 2.10's dataset body has no name or group: the remote rows leave them empty.
    assert _without_name_and_group(listed) == _without_name_and_group(local)
    (row,) = [r for r in listed if r["uri"] == "s3://remote/raw"]
    assert (row["name"], row["group"]) == (None, None)
    assert row["consuming_dags"] == ["remote_uses_raw"] and row["producing_tasks"] == ["raw.raw"]
    filtered = remote(
        server, tmp_path, "assets", "list", "--uri-pattern", "remote/", "--dag-id", "raw"
    )
    assert "s3://remote/raw" in ok(filtered)

    shown = as_json(remote(server, tmp_path, "assets", "show", "s3://remote/raw", "-o", "json"))
    shown_locally = as_json(server.slipstream("assets", "show", "s3://remote/raw", "-o", "json"))
    assert _without_name_and_group(shown) == _without_name_and_group(shown_locally)

    events = remote(server, tmp_path, "assets", "events", "s3://remote/raw", "-o", "json")
    assert as_json(events) == as_json(
        server.slipstream("assets", "events", "s3://remote/raw", "-o", "json")
    )
    assert [e["extra"] for e in as_json(events)] == [{"rows": 3, "from_rest_api": True}]
    table = remote(server, tmp_path, "assets", "events", "--limit", "1")
    assert ok(table) == ok(server.slipstream("assets", "events", "--limit", "1"))

    missing = remote(server, tmp_path, "assets", "show", "s3://remote/nope")
    assert missing.returncode == 3 and "s3://remote/nope" in missing.stderr
    made = remote(server, tmp_path, "assets", "materialize", "s3://remote/raw")
    assert ok(made).startswith("run 'manual__") and "of DAG 'raw' is queued" in made.stdout
    none = remote(server, tmp_path, "assets", "materialize", "s3://remote/nope")
    assert none.returncode == 3


# -- variables -----------------------------------------------------------------------------------


def test_variables_round_trip_and_secrets_are_refused(server: ApiServer, tmp_path: Path) -> None:
    assert ok(remote(server, tmp_path, "variables", "set", "remote_plain", "v1")) == (
        "Variable remote_plain created\n"
    )
    set_json = remote(
        server,
        tmp_path,
        "variables",
        "set",
        "remote_doc",
        '{"a": 1}',
        "--json",
        "--description",
        "d",
    )
    ok(set_json)
    assert ok(remote(server, tmp_path, "variables", "get", "remote_plain")) == "v1\n"
    assert ok(remote(server, tmp_path, "variables", "get", "remote_doc", "--json")) == ok(
        server.slipstream("variables", "get", "remote_doc", "--json")
    )
    assert ok(remote(server, tmp_path, "variables", "get", "remote_none", "-d", "dflt")) == "dflt\n"
    missing = remote(server, tmp_path, "variables", "get", "remote_none")
    assert missing.returncode == 3
    assert missing.stderr == server.slipstream("variables", "get", "remote_none").stderr
    assert as_json(remote(server, tmp_path, "variables", "list", "-o", "json")) == as_json(
        server.slipstream("variables", "list", "-o", "json")
    )

    # The server answers a secret-looking key's value as ***: never printed or exported as such.
    ok(server.slipstream("variables", "set", "remote_api_key", "s3cr3t-value"))
    secret = remote(server, tmp_path, "variables", "get", "remote_api_key")
    assert secret.returncode == 2 and "'remote_api_key'" in secret.stderr
    assert "***" in secret.stderr and "s3cr3t" not in secret.stdout + secret.stderr
    exported = tmp_path / "vars.json"
    refused = remote(server, tmp_path, "variables", "export", str(exported))
    assert refused.returncode == 2 and "'remote_api_key'" in refused.stderr
    assert not exported.exists()
    ok(server.slipstream("variables", "delete", "remote_api_key"))
    ok(remote(server, tmp_path, "variables", "export", str(exported)))
    local_export = tmp_path / "local_vars.json"
    ok(server.slipstream("variables", "export", str(local_export)))
    assert exported.read_text() == local_export.read_text()

    # Import: fail refuses before writing, skip keeps, overwrite replaces (counted as locally).
    source = tmp_path / "import.json"
    source.write_text(json.dumps({"remote_plain": "v2", "remote_new": {"value": 5}}))
    failed = remote(server, tmp_path, "variables", "import", str(source), "-a", "fail")
    assert failed.returncode == 4 and "'remote_plain' already exists" in failed.stderr
    assert remote(server, tmp_path, "variables", "get", "remote_new").returncode == 3
    skipped = remote(server, tmp_path, "variables", "import", str(source), "-a", "skip")
    assert "(1 created, 0 overwritten, 1 skipped)" in ok(skipped)
    overwritten = remote(server, tmp_path, "variables", "import", str(source))
    assert "(0 created, 2 overwritten, 0 skipped)" in ok(overwritten)
    assert ok(server.slipstream("variables", "get", "remote_plain")) == "v2\n"
    assert ok(server.slipstream("variables", "get", "remote_new")) == "5\n"

    for key in ("remote_plain", "remote_doc", "remote_new"):
        assert (
            ok(remote(server, tmp_path, "variables", "delete", key)) == f"Variable {key} deleted\n"
        )
    gone = remote(server, tmp_path, "variables", "delete", "remote_plain")
    assert gone.returncode == 3 and "'remote_plain' not found" in gone.stderr


# -- connections ---------------------------------------------------------------------------------


def test_connections_round_trip_without_passwords(server: ApiServer, tmp_path: Path) -> None:
    added = remote(
        server,
        tmp_path,
        "connections",
        "add",
        "remote_db",
        "--conn-uri",
        "postgres://user:pw-secret@db.example:5432/main?api_key=abcdefgh&region=eu",
    )
    assert ok(added) == "Successfully added `conn_id`=remote_db\n"
    again = remote(server, tmp_path, "connections", "add", "remote_db", "--conn-type", "http")
    assert again.returncode == 4
    assert (
        again.stderr
        == server.slipstream("connections", "add", "remote_db", "--conn-type", "http").stderr
    )

    (shown,) = as_json(remote(server, tmp_path, "connections", "get", "remote_db", "-o", "json"))
    (local,) = as_json(server.slipstream("connections", "get", "remote_db", "-o", "json"))
    # The API never answers a password: the remote row has none; the rest is the local row.
    assert local["password"] == "***" and shown["password"] is None
    assert {**shown, "password": "***"} == local
    assert json.loads(shown["extra"]) == {"api_key": "***", "region": "eu"}
    listed = as_json(remote(server, tmp_path, "connections", "list", "-o", "json"))
    assert [r["conn_id"] for r in listed] == [
        r["conn_id"] for r in as_json(server.slipstream("connections", "list", "-o", "json"))
    ]
    # The stored password is the one given (read on the server's host).
    exported = tmp_path / "local_conns.json"
    ok(server.slipstream("connections", "export", str(exported)))
    assert json.loads(exported.read_text())["remote_db"]["password"] == "pw-secret"

    # Import: existing ids skipped unless --overwrite, which replaces the whole connection.
    source = tmp_path / "conns.json"
    source.write_text(
        json.dumps(
            {"remote_db": "http://other:pw2@web.example", "remote_web": "http://web.example"}
        )
    )
    assert "Imported 1 connection(s)" in ok(
        remote(server, tmp_path, "connections", "import", str(source))
    )
    assert "Imported 2 connection(s)" in ok(
        remote(server, tmp_path, "connections", "import", str(source), "--overwrite")
    )
    ok(server.slipstream("connections", "export", str(exported)))
    replaced = json.loads(exported.read_text())["remote_db"]
    assert (replaced["conn_type"], replaced["host"], replaced["password"]) == (
        "http",
        "web.example",
        "pw2",
    )

    for command in ("export", "test"):
        target = [str(tmp_path / "out.json")] if command == "export" else ["remote_db"]
        refused = remote(server, tmp_path, "connections", command, *target)
        assert refused.returncode == 2 and "never answers a connection's password" in refused.stderr
    assert not (tmp_path / "out.json").exists()

    for conn_id in ("remote_db", "remote_web"):
        ok(remote(server, tmp_path, "connections", "delete", conn_id))
    gone = remote(server, tmp_path, "connections", "get", "remote_db")
    assert gone.returncode == 3
    assert gone.stderr == server.slipstream("connections", "get", "remote_db").stderr


# -- the same credentials and errors as every remote command -------------------------------------

LISTINGS = [
    ("pools", "list"),
    ("assets", "list"),
    ("variables", "list"),
    ("connections", "list"),
]


@pytest.mark.parametrize("command", LISTINGS, ids=[c[0] for c in LISTINGS])
def test_credentials_and_refusals_as_the_other_remote_commands(
    server: ApiServer, tmp_path: Path, command: tuple[str, str]
) -> None:
    no_credentials = remote(server, tmp_path, *command, auth=None)
    assert no_credentials.returncode == 2 and "SLIPSTREAM_TOKEN" in no_credentials.stderr
    wrong = remote(server, tmp_path, *command, auth=(ADMIN[0], "wrong"))
    assert wrong.returncode == 5 and "401" in wrong.stderr
    bad_token = remote(server, tmp_path, *command, auth=None, SLIPSTREAM_TOKEN="not-a-token")
    assert bad_token.returncode == 5 and "401" in bad_token.stderr
    url = f"http://127.0.0.1:{free_port()}"
    unreachable = remote(server, tmp_path, *command, url=url)
    assert unreachable.returncode == 5
    assert unreachable.stderr.startswith(f"Error: server: {url}")
    assert "Traceback" not in unreachable.stderr
    assert not (tmp_path / "laptop").exists()


def test_an_api_token_acts_for_its_user(server: ApiServer, tmp_path: Path) -> None:
    made = server.slipstream("tokens", "create", "--user", ADMIN[0], "--name", "resources")
    token = ok(made).strip()
    result = remote(
        server, tmp_path, "variables", "set", "by_token", "t", auth=None, SLIPSTREAM_TOKEN=token
    )
    assert ok(result) == "Variable by_token created\n"
    listed = remote(
        server, tmp_path, "pools", "list", "-o", "json", auth=None, SLIPSTREAM_TOKEN=token
    )
    assert "default_pool" in [row["pool"] for row in as_json(listed)]
    ok(server.slipstream("variables", "delete", "by_token"))


def test_a_viewer_reads_but_may_not_change(server: ApiServer, tmp_path: Path) -> None:
    assert remote(server, tmp_path, "pools", "list", auth=VIEWER).returncode == 0
    assert remote(server, tmp_path, "assets", "list", auth=VIEWER).returncode == 0
    for args in (
        ("pools", "set", "viewer_pool", "1", "x"),
        ("variables", "set", "viewer_var", "x"),
        ("variables", "list"),  # Viewer does not hold the Variables permission
        ("connections", "add", "viewer_conn", "--conn-type", "http"),
    ):
        denied = remote(server, tmp_path, *args, auth=VIEWER)
        assert denied.returncode == 5, args
        assert "403" in denied.stderr
    assert server.slipstream("pools", "get", "viewer_pool").returncode == 3
