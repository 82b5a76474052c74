"""`slipstream users ...` in-process against a real SQLite home: Airflow's flags and messages."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from slipstream.cli.main import cli
from slipstream.clock import SystemClock
from slipstream.services.sign_in import SignInService
from slipstream.store.db import Database
from tests.cli.conftest import Cli

PASSWORD = "s3cret-Pa55"
NAMES = ["--email", "ada@example.com", "--firstname", "Ada", "--lastname", "Lovelace"]


def create(slipstream: Cli, *extra: str, username: str = "ada", role: str = "Admin") -> Result:
    return slipstream("users", "create", "--username", username, "--role", role, *NAMES, *extra)


def with_input(slipstream: Cli, text: str, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), input=text, env=slipstream.env)


def authenticate(slipstream: Cli, username: str, password: str) -> bool:
    db = Database(slipstream.env["SLIPSTREAM_DATABASE_URL"])
    try:
        return SignInService(db, clock=SystemClock()).authenticate(username, password) is not None
    finally:
        db.dispose()


def listed(slipstream: Cli) -> list[dict[str, object]]:
    result = slipstream("users", "list", "--output", "json")
    assert result.exit_code == 0, result.output
    users: list[dict[str, object]] = json.loads(result.stdout)
    return users


def test_create_with_a_password(slipstream: Cli) -> None:
    result = create(slipstream, "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == 'User "ada" created with role "Admin"'
    assert PASSWORD not in result.output
    assert authenticate(slipstream, "ada", PASSWORD)


def test_create_with_short_flags(slipstream: Cli) -> None:
    result = slipstream(
        "users", "create", "-u", "ada", "-e", "a@x.org", "-f", "A", "-l", "L", "-r", "Viewer",
        "-p", PASSWORD,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert listed(slipstream)[0]["roles"] == ["Viewer"]


def test_create_with_a_random_password_prints_it_once(slipstream: Cli) -> None:
    result = create(slipstream, "--use-random-password")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == 'User "ada" created with role "Admin"'
    (shown,) = [line for line in lines if line.startswith("Generated password: ")]
    password = shown.removeprefix("Generated password: ")
    assert len(password) == 16
    assert result.output.count(password) == 1
    assert authenticate(slipstream, "ada", password)


def test_create_prompts_twice_for_the_password(slipstream: Cli) -> None:
    args = ["users", "create", "-u", "ada", "-r", "User", *NAMES]
    result = with_input(slipstream, f"{PASSWORD}\n{PASSWORD}\n", *args)
    assert result.exit_code == 0, result.output
    assert 'User "ada" created with role "User"' in result.stdout
    assert PASSWORD not in result.output  # hidden input is not echoed
    assert authenticate(slipstream, "ada", PASSWORD)


def test_create_stops_when_the_prompted_passwords_differ(slipstream: Cli) -> None:
    args = ["users", "create", "-u", "ada", "-r", "User", *NAMES]
    result = with_input(slipstream, f"{PASSWORD}\nsomething-else\n", *args)
    assert result.exit_code != 0
    assert "Passwords did not match" in result.output
    assert listed(slipstream) == []


def test_create_refuses_both_password_options(slipstream: Cli) -> None:
    result = create(slipstream, "--password", PASSWORD, "--use-random-password")
    assert result.exit_code == 2
    assert listed(slipstream) == []


def test_an_existing_username_is_reported_and_exits_0_unchanged(slipstream: Cli) -> None:
    assert create(slipstream, "--password", PASSWORD).exit_code == 0
    again = create(slipstream, "--password", "another-password", role="Viewer")
    assert again.exit_code == 0
    assert again.stdout.strip() == "ada already exist in the db"
    assert [u["roles"] for u in listed(slipstream)] == [["Admin"]]
    assert authenticate(slipstream, "ada", PASSWORD)
    assert not authenticate(slipstream, "ada", "another-password")


def test_an_unknown_role_exits_non_zero_with_airflows_message(slipstream: Cli) -> None:
    result = create(slipstream, "--password", PASSWORD, role="Superuser")
    assert result.exit_code != 0
    assert (
        "Superuser is not a valid role. Valid roles are: ['Admin', 'Op', 'Public', 'User',"
        " 'Viewer']" in result.output
    )
    assert listed(slipstream) == []


def test_a_taken_email_is_a_conflict(slipstream: Cli) -> None:
    assert create(slipstream, "--password", PASSWORD).exit_code == 0
    result = create(slipstream, "--password", PASSWORD, username="grace")
    assert result.exit_code == 4
    assert "ada@example.com" in result.output


def test_list_as_json_and_as_a_table(slipstream: Cli) -> None:
    assert slipstream("users", "list").stdout.strip() == "No data found"
    assert create(slipstream, "-p", PASSWORD).exit_code == 0
    result = slipstream(
        "users", "create", "-u", "grace", "-e", "grace@example.com", "-f", "Grace", "-l", "Hopper",
        "-r", "Viewer", "-p", PASSWORD,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    users = listed(slipstream)
    assert [(u["username"], u["email"], u["roles"], u["active"]) for u in users] == [
        ("ada", "ada@example.com", ["Admin"], True),
        ("grace", "grace@example.com", ["Viewer"], True),
    ]
    assert set(users[0]) == {
        "id",
        "username",
        "email",
        "first_name",
        "last_name",
        "roles",
        "active",
    }
    table = slipstream("users", "list").stdout
    assert "grace" in table and "Viewer" in table
    assert "argon2" not in table and "argon2" not in json.dumps(users)


def test_delete(slipstream: Cli) -> None:
    assert create(slipstream, "-p", PASSWORD).exit_code == 0
    result = slipstream("users", "delete", "--username", "ada")
    assert result.exit_code == 0
    assert result.stdout.strip() == 'User "ada" deleted'
    assert listed(slipstream) == []
    missing = slipstream("users", "delete", "-u", "ada")
    assert missing.exit_code == 3
    assert "not found" in missing.output


def test_reset_password(slipstream: Cli) -> None:
    assert create(slipstream, "-p", PASSWORD).exit_code == 0
    result = slipstream("users", "reset-password", "--username", "ada", "--password", "new-one")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == 'User "ada" password reset'
    assert "new-one" not in result.output
    assert authenticate(slipstream, "ada", "new-one")
    assert not authenticate(slipstream, "ada", PASSWORD)


def test_reset_password_randomly_or_by_prompt(slipstream: Cli) -> None:
    assert create(slipstream, "-p", PASSWORD).exit_code == 0
    random = slipstream("users", "reset-password", "-u", "ada", "--use-random-password")
    assert random.exit_code == 0, random.output
    (shown,) = [line for line in random.stdout.splitlines() if line.startswith("Generated")]
    assert authenticate(slipstream, "ada", shown.removeprefix("Generated password: "))
    prompted = with_input(
        slipstream, "typed-one\ntyped-one\n", "users", "reset-password", "-u", "ada"
    )
    assert prompted.exit_code == 0, prompted.output
    assert authenticate(slipstream, "ada", "typed-one")
    missing = slipstream("users", "reset-password", "-u", "nobody", "-p", "x")
    assert missing.exit_code == 3


def test_add_and_remove_roles(slipstream: Cli) -> None:
    assert create(slipstream, "-p", PASSWORD, role="Viewer").exit_code == 0
    added = slipstream("users", "add-role", "--username", "ada", "--role", "Op")
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == 'User "ada" added to role "Op"'
    assert listed(slipstream)[0]["roles"] == ["Viewer", "Op"]
    removed = slipstream("users", "remove-role", "-u", "ada", "-r", "Viewer")
    assert removed.exit_code == 0, removed.output
    assert removed.stdout.strip() == 'User "ada" removed from role "Viewer"'
    assert listed(slipstream)[0]["roles"] == ["Op"]
    again = slipstream("users", "remove-role", "-u", "ada", "-r", "Viewer")
    assert again.exit_code == 2
    assert 'User "ada" is not a member of role "Viewer"' in again.output


def test_users_needs_a_migrated_database(slipstream: Cli) -> None:
    env = {**slipstream.env, "SLIPSTREAM_DATABASE_URL": f"sqlite:///{slipstream.home / 'new.db'}"}
    result = CliRunner().invoke(cli, ["users", "list"], env=env)
    assert result.exit_code == 5
    assert "slipstream db migrate" in result.output


def test_help_tells_how_to_keep_the_password_out_of_shell_history(slipstream: Cli) -> None:
    result = slipstream("users", "create", "--help")
    assert result.exit_code == 0
    assert "shell history" in result.output
    assert "users" in slipstream("--help").output
