"""`slipstream tokens ...` in-process against a real SQLite home: the token printed once,
listed without its secret, revoked; exit codes 2, 3 and 4 for bad input, unknown and taken."""

from __future__ import annotations

import json

from slipstream.clock import SystemClock
from slipstream.services.tokens import TokenService
from slipstream.store.db import Database
from tests.cli.conftest import Cli


def make_user(slipstream: Cli, username: str = "ada") -> None:
    result = slipstream(
        "users", "create", "--username", username, "--role", "Op", "--password", "pw",
        "--email", f"{username}@example.com", "--firstname", "A", "--lastname", "L",
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def owner_of(slipstream: Cli, token: str) -> str | None:
    db = Database(slipstream.env["SLIPSTREAM_DATABASE_URL"])
    try:
        service = TokenService(db, clock=SystemClock(), session_ttl=60)
        user = service.authenticate_token(token)
        return user.username if user is not None else None
    finally:
        db.dispose()


def listed(slipstream: Cli, *args: str) -> list[dict[str, object]]:
    result = slipstream("tokens", "list", "--output", "json", *args)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_create_prints_just_the_token_on_stdout(slipstream: Cli) -> None:
    make_user(slipstream)
    result = slipstream("tokens", "create", "--user", "ada", "--name", "ci", "--expires", "30d")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("slp_") and "\n" not in token
    assert "shown only this once" in result.stderr
    assert token not in result.stderr
    assert owner_of(slipstream, token) == "ada"
    [row] = listed(slipstream)
    assert row["name"] == "ci" and row["owner"] == "ada" and row["kind"] == "api"
    assert row["expires"] is not None and row["revoked"] is None
    assert token not in json.dumps(row)


def test_never_expires_by_default(slipstream: Cli) -> None:
    make_user(slipstream)
    assert slipstream("tokens", "create", "-u", "ada", "-n", "laptop").exit_code == 0
    assert listed(slipstream)[0]["expires"] is None


def test_list_as_a_table_and_for_one_user(slipstream: Cli) -> None:
    make_user(slipstream, "ada")
    make_user(slipstream, "bob")
    slipstream("tokens", "create", "--user", "ada", "--name", "ci")
    slipstream("tokens", "create", "--user", "bob", "--name", "laptop")
    table = slipstream("tokens", "list")
    assert table.exit_code == 0
    assert table.stdout.splitlines()[0].split(" | ")[0].strip() == "name"
    assert "laptop" in table.stdout and "ci" in table.stdout
    assert [r["name"] for r in listed(slipstream, "--user", "bob")] == ["laptop"]
    unknown = slipstream("tokens", "list", "--user", "nobody")
    assert unknown.exit_code == 3


def test_revoke(slipstream: Cli) -> None:
    make_user(slipstream)
    token = slipstream("tokens", "create", "--user", "ada", "--name", "ci").stdout.strip()
    result = slipstream("tokens", "revoke", "--user", "ada", "--name", "ci")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == 'Token "ci" of user "ada" revoked'
    assert owner_of(slipstream, token) is None
    assert listed(slipstream)[0]["revoked"] is not None
    again = slipstream("tokens", "revoke", "--user", "ada", "--name", "ci")
    assert again.exit_code == 3
    assert "no active token named 'ci'" in again.stderr


def test_exit_codes(slipstream: Cli) -> None:
    make_user(slipstream)
    assert slipstream("tokens", "create", "--user", "ada", "--name", "ci").exit_code == 0
    taken = slipstream("tokens", "create", "--user", "ada", "--name", "ci")
    assert taken.exit_code == 4 and taken.stdout == ""
    assert slipstream("tokens", "create", "--user", "nobody", "--name", "x").exit_code == 3
    bad = slipstream("tokens", "create", "--user", "ada", "--name", "x", "--expires", "soon")
    assert bad.exit_code == 2 and "expires" in bad.stderr and bad.stdout == ""
    assert slipstream("tokens", "create", "--user", "ada", "--name", "").exit_code == 2
    assert len(listed(slipstream)) == 1
