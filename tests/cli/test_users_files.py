"""`slipstream users export|import` against real SQLite and PostgreSQL databases: Airflow's
users file, round trips, updates, and refusals that leave every user as they were."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from slipstream.cli.main import cli
from slipstream.clock import SystemClock
from slipstream.services.sign_in import SignInService
from slipstream.store import users as users_store
from slipstream.store.db import Database
from tests.cli.conftest import Cli
from tests.conftest import copy_sqlite_template

PASSWORD = "s3cret-Pa55"
KEYS = {"id", "username", "email", "firstname", "lastname", "roles"}


def cli_on(url: str, home: Path) -> Cli:
    """The CLI of a home of its own, on the database at `url`."""
    (home / "dags").mkdir(parents=True)
    env = {
        "SLIPSTREAM_HOME": str(home),
        "SLIPSTREAM_LOAD_EXAMPLES": "false",
        "SLIPSTREAM_DATABASE_URL": url,
    }
    return Cli(home, env)


@pytest.fixture(scope="session")
def source_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with three users, one holding a custom role, made once by the CLI:
    each of its three argon2id hashes costs a fifth of a second of CPU."""
    folder = tmp_path_factory.mktemp("users-source")
    path = folder / "source.db"
    run = cli_on(f"sqlite:///{path}", folder / "home")
    ok(run("db", "migrate"))
    ok(run("roles", "create", "Auditor"))
    for username, role in (("ada", "Admin"), ("bob", "Viewer"), ("cy", "Auditor")):
        ok(
            run(
                "users", "create", "-u", username, "-e", f"{username}@example.com",
                "-f", username.title(), "-l", "Smith", "-r", role, "-p", PASSWORD,
            )
        )  # fmt: skip
    ok(run("users", "add-role", "-u", "bob", "-r", "Op"))
    return path


@pytest.fixture
def source(source_template: Path, tmp_path: Path) -> Cli:
    """A SQLite home of its own (not `db`'s) with three users, one holding a custom role: a
    copy of source_template."""
    path = copy_sqlite_template(source_template, tmp_path / "source.db")
    return cli_on(f"sqlite:///{path}", tmp_path / "source")


@pytest.fixture
def target(db: Database, tmp_path: Path) -> Cli:
    """A fresh, migrated database, on each backend."""
    return cli_on(db.url, tmp_path / "target")


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def listed(run: Cli) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = json.loads(ok(run("users", "list", "-o", "json")).stdout)
    return users


def profiles(run: Cli) -> list[tuple[Any, ...]]:
    return [
        (u["username"], u["email"], u["first_name"], u["last_name"], u["roles"])
        for u in listed(run)
    ]


def hashes(run: Cli) -> dict[str, str]:
    db = Database(run.env["SLIPSTREAM_DATABASE_URL"])
    try:
        with db.read() as conn:
            found = {
                u["username"]: users_store.password_hash_of(conn, u["username"])
                for u in listed(run)
            }
    finally:
        db.dispose()
    return {name: pair[1] for name, pair in found.items() if pair is not None}


def authenticate(run: Cli, username: str, password: str) -> bool:
    db = Database(run.env["SLIPSTREAM_DATABASE_URL"])
    try:
        return SignInService(db, clock=SystemClock()).authenticate(username, password) is not None
    finally:
        db.dispose()


def write(path: Path, data: object) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def entry(username: str, role: str = "Viewer", **extra: object) -> dict[str, object]:
    return {
        "username": username,
        "email": f"{username}@example.com",
        "firstname": username.title(),
        "lastname": "Smith",
        "roles": [role],
        **extra,
    }


def test_export_writes_airflows_keys_and_no_password(source: Cli, tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    result = ok(source("users", "export", str(path)))
    assert result.stdout.strip() == f"3 users successfully exported to {path}"
    text = path.read_text()
    exported = json.loads(text)
    assert [set(e) for e in exported] == [KEYS] * 3
    assert [(e["username"], e["firstname"], e["roles"]) for e in exported] == [
        ("ada", "Ada", ["Admin"]),
        ("bob", "Bob", ["Viewer", "Op"]),
        ("cy", "Cy", ["Auditor"]),
    ]
    assert "password" not in text and "argon2" not in text and PASSWORD not in text
    for stored in hashes(source).values():
        assert stored.startswith("$argon2id$")
        assert stored not in text and stored.split("$")[-1] not in text


def test_export_to_standard_output_prints_json_only(source: Cli) -> None:
    result = ok(source("users", "export", "-"))
    assert [e["username"] for e in json.loads(result.stdout)] == ["ada", "bob", "cy"]
    assert "3 users successfully exported" in result.stderr


def test_round_trip_into_a_fresh_database(source: Cli, target: Cli, tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    ok(source("users", "export", str(path)))
    ok(target("roles", "create", "Auditor"))
    result = ok(target("users", "import", str(path)))
    assert "Created the following users:\n\tada\n\tbob\n\tcy\n" in result.stdout
    assert "Created 3, updated 0, unchanged 0 users" in result.stdout
    assert "users reset-password" in result.stdout
    assert profiles(target) == profiles(source)
    assert all(u["active"] for u in listed(target))

    # The random passwords are stored only as hashes, and shown nowhere.
    stored = hashes(target)
    assert sorted(stored) == ["ada", "bob", "cy"]
    assert all(h.startswith("$argon2id$") for h in stored.values())
    assert len(set(stored.values())) == 3
    assert not authenticate(target, "ada", PASSWORD)
    # It would be 32 letters and digits: no word of the output is, or signs in.
    words = [w.strip("`.,") for w in result.output.split()]
    for word in [w for w in words if len(w) >= 16]:
        assert not authenticate(target, "ada", word)
    # ...until the password is reset.
    ok(target("users", "reset-password", "-u", "ada", "-p", PASSWORD))
    assert authenticate(target, "ada", PASSWORD)

    # Importing the same file again changes nothing, passwords included.
    before = hashes(target)
    again = ok(target("users", "import", str(path)))
    assert "Created 0, updated 0, unchanged 3 users" in again.stdout
    assert hashes(target) == before


def test_import_updates_existing_users_by_username(target: Cli, tmp_path: Path) -> None:
    ok(target("roles", "create", "Auditor"))
    ok(
        target(
            "users", "create", "-u", "ada", "-e", "ada@old.org", "-f", "A", "-l", "L",
            "-r", "Admin", "-p", PASSWORD,
        )
    )  # fmt: skip
    before = hashes(target)["ada"]
    changed = {**entry("ada", "Op"), "roles": ["Op", "Auditor"], "lastname": "Lovelace"}
    path = write(tmp_path / "users.json", [changed, entry("bob")])
    result = ok(target("users", "import", path))
    assert "Created the following users:\n\tbob\n" in result.stdout
    assert "Updated the following users:\n\tada\n" in result.stdout
    assert "Created 1, updated 1, unchanged 0 users" in result.stdout
    assert profiles(target) == [
        ("ada", "ada@example.com", "Ada", "Lovelace", ["Op", "Auditor"]),
        ("bob", "bob@example.com", "Bob", "Smith", ["Viewer"]),
    ]
    # An update leaves the password alone.
    assert hashes(target)["ada"] == before
    assert authenticate(target, "ada", PASSWORD)


def refused(run: Cli, path: str) -> str:
    """Run an import that must be refused as bad input and leave every user as they were."""
    before = (profiles(run), hashes(run))
    result = run("users", "import", path)
    assert result.exit_code == 2, result.output
    assert (profiles(run), hashes(run)) == before
    return result.stderr


@pytest.fixture
def one_user(target: Cli) -> Cli:
    ok(
        target(
            "users", "create", "-u", "ada", "-e", "ada@example.com", "-f", "Ada",
            "-l", "Smith", "-r", "Admin", "-p", PASSWORD,
        )
    )  # fmt: skip
    return target


def test_a_missing_field_names_the_entry_and_the_field(one_user: Cli, tmp_path: Path) -> None:
    incomplete = entry("cy")
    del incomplete["email"]
    # Valid entries before the bad one are not written either.
    path = write(tmp_path / "u.json", [entry("ada", "Op"), entry("bob"), incomplete])
    error = refused(one_user, path)
    assert 'Item 2 (username "cy"): missing required field "email"' in error
    assert len(listed(one_user)) == 1


def test_every_problem_is_reported_at_once(one_user: Cli, tmp_path: Path) -> None:
    path = write(
        tmp_path / "u.json",
        [
            {"username": "bob"},
            entry("cy", first_name="Cy"),
            "dan",
            {**entry("eve"), "roles": []},
            {**entry("fay"), "email": 7},
        ],
    )
    error = refused(one_user, path)
    for expected in (
        'Item 0 (username "bob"): missing required field "firstname"',
        'Item 0 (username "bob"): missing required field "roles"',
        'Item 1 (username "cy"): unknown field "first_name"',
        "Item 2: must be a JSON object, not a string",
        'Item 3 (username "eve"): "roles" must name at least one role',
        'Item 4 (username "fay"): "email" must be a string, not a number',
    ):
        assert expected in error


def test_an_unknown_role_is_refused_by_name(one_user: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "u.json", [entry("ada", "Op"), entry("bob", "Superuser")])
    error = refused(one_user, path)
    assert 'Item 1 (username "bob"): "Superuser" is not a valid role.' in error
    # A custom role is known once it exists.
    ok(one_user("roles", "create", "Superuser"))
    ok(one_user("users", "import", path))
    assert [u["roles"] for u in listed(one_user)] == [["Op"], ["Superuser"]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"username": "bob",', "is not valid JSON"),
        ("", "is not valid JSON"),
        ('{"username": "bob"}', "must hold a JSON list of users, not an object"),
        ('"users"', "must hold a JSON list of users, not a string"),
    ],
)
def test_a_file_that_is_not_a_json_list_is_refused(
    one_user: Cli, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "u.json"
    path.write_text(content)
    assert message in refused(one_user, str(path))


def test_bytes_that_are_not_utf8_are_refused(one_user: Cli, tmp_path: Path) -> None:
    path = tmp_path / "u.json"
    path.write_bytes(b'[{"username": "\xff"}]')
    assert "is not valid JSON" in refused(one_user, str(path))


def test_duplicates_and_taken_emails_are_refused(one_user: Cli, tmp_path: Path) -> None:
    twice = write(tmp_path / "a.json", [entry("bob"), entry("bob", "Op")])
    assert 'Item 1 (username "bob"): username "bob" is also in Item 0' in refused(one_user, twice)
    shared = write(tmp_path / "b.json", [entry("bob"), {**entry("cy"), "email": "bob@example.com"}])
    assert 'email "bob@example.com" is also in Item 0' in refused(one_user, shared)
    # ada keeps her email, as she is not in the file: bob may not take it.
    taken = write(tmp_path / "c.json", [{**entry("bob"), "email": "ada@example.com"}])
    assert 'email "ada@example.com" belongs to user "ada"' in refused(one_user, taken)


def test_an_email_given_up_by_an_update_may_go_to_a_new_user(one_user: Cli, tmp_path: Path) -> None:
    moved = [{**entry("bob"), "email": "ada@example.com"}, {**entry("ada"), "email": "ada@new.org"}]
    ok(one_user("users", "import", write(tmp_path / "u.json", moved)))
    assert [(u["username"], u["email"]) for u in listed(one_user)] == [
        ("ada", "ada@new.org"),
        ("bob", "ada@example.com"),
    ]


def test_import_reads_standard_input(one_user: Cli) -> None:
    text = json.dumps([entry("bob")])
    result = CliRunner().invoke(cli, ["users", "import", "-"], input=text, env=one_user.env)
    assert result.exit_code == 0, result.output
    assert "Created 1, updated 0, unchanged 0 users from standard input" in result.stdout


def test_a_missing_file_is_a_usage_error(one_user: Cli, tmp_path: Path) -> None:
    result = one_user("users", "import", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
