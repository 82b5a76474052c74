"""`slipstream users ...`: create, list, delete users, reset passwords, add and remove roles,
export and import users files.

Flags and messages are Airflow's (`airflow users create` of the FAB auth manager). Passwords are
never echoed or logged; the one exception is the password made by --use-random-password,
printed once so that it can be handed on. Users files never hold a password or its hash.
"""

from __future__ import annotations

import json
import sys

import click

from slipstream.auth.passwords import random_password
from slipstream.bootstrap import Accounts, account_services, open_database
from slipstream.cli.actor import cli_actor
from slipstream.cli.errors import handle_errors
from slipstream.cli.output import OUTPUT_OPTION, render
from slipstream.cli.settings import load_settings
from slipstream.clock import SystemClock
from slipstream.errors import InvalidInputError, UserAlreadyExists, UserNotFound
from slipstream.services.user_files import read_user_entries, user_file_entry
from slipstream.services.users import UserService

_PASSWORD_HELP = (
    "The password. A password typed on the command line stays in your shell history:"
    " leave this out to be prompted for it, or use --use-random-password."
)
USERNAME_OPTION = click.option("--username", "-u", required=True, help="The user's username.")


def open_accounts() -> Accounts:
    db = open_database(load_settings())
    click.get_current_context().call_on_close(db.dispose)
    return account_services(db, SystemClock())


def open_user_service() -> UserService:
    return open_accounts().users


def choose_password(password: str | None, use_random_password: bool) -> str:
    """The password given, a random one, or one typed twice at a hidden prompt."""
    if password is not None and use_random_password:
        raise click.UsageError("give --password or --use-random-password, not both")
    if use_random_password:
        return random_password()
    if password is not None:
        return password
    first = click.prompt("Password", hide_input=True)
    again = click.prompt("Repeat for confirmation", hide_input=True)
    if first != again:
        click.echo("Passwords did not match", err=True)
        sys.exit(1)
    return str(first)


@click.group()
def users() -> None:
    """Create, list and delete users; reset passwords; add and remove roles; export and
    import users."""


@users.command()
@USERNAME_OPTION
@click.option("--email", "-e", required=True, help="The user's email address.")
@click.option("--firstname", "-f", required=True, help="The user's first name.")
@click.option("--lastname", "-l", required=True, help="The user's last name.")
@click.option(
    "--role", "-r", required=True, help="Admin, Op, User, Viewer, Public or a custom role."
)
@click.option("--password", "-p", help=_PASSWORD_HELP)
@click.option("--use-random-password", is_flag=True, help="Make a random password; print it once.")
@handle_errors
def create(
    username: str,
    email: str,
    firstname: str,
    lastname: str,
    role: str,
    password: str | None,
    use_random_password: bool,
) -> None:
    """Create a user. Without --password or --use-random-password, prompts for the password
    (twice, hidden), which keeps it out of shell history."""
    service = open_user_service()
    service.check_role(role)
    if _exists(service, username):
        # Airflow's behaviour: an existing user is not an error, and nothing changes.
        click.echo(f"{username} already exist in the db")
        return
    chosen = choose_password(password, use_random_password)
    try:
        service.create(
            username=username,
            email=email,
            first_name=firstname,
            last_name=lastname,
            role=role,
            password=chosen,
            by=cli_actor(),
        )
    except UserAlreadyExists as exc:
        if exc.email is not None:
            raise
        click.echo(f"{username} already exist in the db")
        return
    if use_random_password:
        click.echo(f"Generated password: {chosen}")
    click.echo(f'User "{username}" created with role "{role}"')


def _exists(service: UserService, username: str) -> bool:
    try:
        service.get(username)
    except UserNotFound:
        return False
    return True


@users.command("list")
@OUTPUT_OPTION
@handle_errors
def list_users(output: str) -> None:
    """List users."""
    found, _ = open_user_service().list_users(limit=None)
    rows = [
        {
            "id": u.id,
            "username": u.username,
            "email": u.email,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "roles": list(u.roles) if output == "json" else ",".join(u.roles),
            "active": u.active,
        }
        for u in found
    ]
    render(rows, ["id", "username", "email", "first_name", "last_name", "roles", "active"], output)


@users.command()
@USERNAME_OPTION
@handle_errors
def delete(username: str) -> None:
    """Delete a user."""
    open_user_service().delete(username, by=cli_actor())
    click.echo(f'User "{username}" deleted')


@users.command("reset-password")
@USERNAME_OPTION
@click.option("--password", "-p", help=_PASSWORD_HELP)
@click.option("--use-random-password", is_flag=True, help="Make a random password; print it once.")
@handle_errors
def reset_password(username: str, password: str | None, use_random_password: bool) -> None:
    """Set a user's password. Without --password or --use-random-password, prompts for it
    (twice, hidden), which keeps it out of shell history."""
    service = open_user_service()
    service.get(username)  # an unknown user is reported before anyone types a password
    chosen = choose_password(password, use_random_password)
    service.reset_password(username, chosen, by=cli_actor())
    if use_random_password:
        click.echo(f"Generated password: {chosen}")
    click.echo(f'User "{username}" password reset')


@users.command("add-role")
@USERNAME_OPTION
@click.option("--role", "-r", required=True, help="The role to add.")
@handle_errors
def add_role(username: str, role: str) -> None:
    """Give a user one more role."""
    open_user_service().add_role(username, role, by=cli_actor())
    click.echo(f'User "{username}" added to role "{role}"')


@users.command("remove-role")
@USERNAME_OPTION
@click.option("--role", "-r", required=True, help="The role to remove.")
@handle_errors
def remove_role(username: str, role: str) -> None:
    """Take a role away from a user."""
    open_user_service().remove_role(username, role, by=cli_actor())
    click.echo(f'User "{username}" removed from role "{role}"')


@users.command("export")
@click.argument("filepath", type=click.Path(dir_okay=False, writable=True, allow_dash=True))
@handle_errors
def export_users(filepath: str) -> None:
    """Write every user to FILEPATH as JSON (`-`: standard output): username, email,
    firstname, lastname and roles, as Airflow does; never a password or its hash."""
    found, _ = open_user_service().list_users(limit=None)
    text = json.dumps([user_file_entry(u) for u in found], sort_keys=True, indent=4)
    if filepath == "-":
        click.echo(text)
        # The file is standard output: the summary goes aside, so a pipe gets JSON only.
        click.echo(f"{len(found)} users successfully exported to standard output", err=True)
        return
    try:
        with open(filepath, "w", encoding="utf-8") as file:
            file.write(text + "\n")
    except OSError as exc:
        raise InvalidInputError(
            f"cannot write {filepath}: {exc.strerror}", field="filepath"
        ) from None
    click.echo(f"{len(found)} users successfully exported to {filepath}")


@users.command("import")
@click.argument("filepath", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@handle_errors
def import_users(filepath: str) -> None:
    """Create or update users from a JSON file written by `users export` (`-`: standard
    input). Users are matched by username; new ones must run `users reset-password` before
    they can sign in. Nothing is changed unless every entry is valid."""
    shown = "standard input" if filepath == "-" else filepath
    try:
        with click.open_file(filepath, encoding="utf-8") as file:
            data = json.loads(file.read())
    except ValueError as exc:  # also bytes that are not UTF-8
        raise InvalidInputError(
            f"File '{shown}' is not valid JSON. Error: {exc}", field="filepath"
        ) from None
    entries = read_user_entries(data)
    result = open_accounts().user_files.import_users(entries, by=cli_actor())
    if result.created:
        click.echo("Created the following users:\n\t" + "\n\t".join(result.created))
    if result.updated:
        click.echo("Updated the following users:\n\t" + "\n\t".join(result.updated))
    click.echo(
        f"Created {len(result.created)}, updated {len(result.updated)},"
        f" unchanged {len(result.unchanged)} users from {shown}"
    )
    if result.created:
        # Their random passwords were hashed and forgotten: nobody knows them.
        click.echo(
            "New users have no usable password: set one with"
            " `slipstream users reset-password --username USERNAME` before they sign in"
        )
