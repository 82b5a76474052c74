"""`slipstream variables ...`: get, set, delete, list, import and export stored Variables, with
Airflow's `airflow variables` arguments, in the local database or, with `--server`, through a
server's /api/v1/variables (remote_variables.py). Values are encrypted at rest
(SLIPSTREAM_FERNET_KEY)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from slipstream.cli import remote_variables
from slipstream.cli.actor import cli_actor
from slipstream.cli.errors import handle_errors
from slipstream.cli.output import OUTPUT_OPTION, render
from slipstream.cli.remote import Target, open_client, remote_options
from slipstream.cli.settings import open_services
from slipstream.errors import InvalidInputError, VariableNotFound
from slipstream.services.variables import OnExisting


@click.group()
def variables() -> None:
    """Get, set, delete, list, import and export Variables."""


@variables.command("get")
@click.argument("key")
@click.option("--default", "-d", "default", default=None, help="Printed if the key is not set.")
@click.option("--json", "-j", "as_json", is_flag=True, help="Deserialize the value as JSON.")
@handle_errors
@remote_options
def get_variable(key: str, default: str | None, as_json: bool, remote: Target | None) -> None:
    """Print the value of KEY."""
    try:
        if remote is not None:
            value = remote_variables.get(open_client(remote), key).val
        else:
            value = open_services().variables.get(key).val
    except VariableNotFound:
        if default is None:
            raise
        click.echo(default)
        return
    if as_json:
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise InvalidInputError(f"Variable {key} is not valid JSON: {exc}") from None
        click.echo(json.dumps(parsed, indent=2) if not isinstance(parsed, str) else parsed)
        return
    click.echo(value)


@variables.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--description", default=None, help="What the variable is for.")
@click.option("--json", "-j", "as_json", is_flag=True, help="VALUE is JSON: store it as such.")
@handle_errors
@remote_options
def set_variable(
    key: str, value: str, description: str | None, as_json: bool, remote: Target | None
) -> None:
    """Create or overwrite KEY."""
    if as_json:
        try:
            value = json.dumps(json.loads(value), indent=2)
        except ValueError as exc:
            raise InvalidInputError(f"VALUE is not valid JSON: {exc}", field="value") from None
    if remote is not None:
        remote_variables.set_variable(open_client(remote), key, value, description)
    else:
        open_services().variables.set(key, value, description, by=cli_actor())
    click.echo(f"Variable {key} created")


@variables.command("delete")
@click.argument("key")
@handle_errors
@remote_options
def delete_variable(key: str, remote: Target | None) -> None:
    """Delete KEY."""
    if remote is not None:
        remote_variables.delete(open_client(remote), key)
    else:
        open_services().variables.delete(key, by=cli_actor())
    click.echo(f"Variable {key} deleted")


@variables.command("list")
@OUTPUT_OPTION
@handle_errors
@remote_options
def list_variables(output: str, remote: Target | None) -> None:
    """List the stored keys (not their values)."""
    if remote is not None:
        found = remote_variables.listed(open_client(remote))
    else:
        found = open_services().variables.export_all()
    render([{"key": v.key, "description": v.description} for v in found], ["key"], output)


@variables.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--action-on-existing-key",
    "-a",
    type=click.Choice([a.value for a in OnExisting]),
    default=OnExisting.OVERWRITE.value,
    show_default=True,
    help="What to do with a key that is already stored.",
)
@handle_errors
@remote_options
def import_variables(file: Path, action_on_existing_key: str, remote: Target | None) -> None:
    """Import variables from a JSON file: {"key": value} or {"key": {"value": ...,
    "description": ...}}; values that are not strings are stored as JSON."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read {file}: {exc.strerror}", field="file") from None
    except ValueError as exc:
        raise InvalidInputError(f"{file} is not valid JSON: {exc}", field="file") from None
    if not isinstance(document, dict):
        raise InvalidInputError(f"{file} must hold a JSON object of variables", field="file")
    entries: dict[str, tuple[str, str | None]] = {}
    for key, raw in document.items():
        value, description = raw, None
        if isinstance(raw, dict) and "value" in raw and set(raw) <= {"value", "description"}:
            value, description = raw["value"], raw.get("description")
        entries[key] = (value if isinstance(value, str) else json.dumps(value), description)
    on_existing = OnExisting(action_on_existing_key)
    if remote is not None:
        outcome = remote_variables.import_all(open_client(remote), entries, on_existing)
    else:
        outcome = open_services().variables.import_all(entries, on_existing, by=cli_actor())
    click.echo(
        f"{outcome.created + outcome.overwritten} of {len(entries)} variables successfully"
        f" updated ({outcome.created} created, {outcome.overwritten} overwritten,"
        f" {outcome.skipped} skipped)."
    )


@variables.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
@remote_options
def export_variables(file: Path, remote: Target | None) -> None:
    """Export every variable to a JSON file (mode 0600: it holds their values in clear)."""
    document: dict[str, Any] = {}
    if remote is not None:
        found = remote_variables.export_all(open_client(remote))
    else:
        found = open_services().variables.export_all()
    for variable in found:
        try:
            value: Any = json.loads(variable.val)
        except ValueError:
            value = variable.val
        document[variable.key] = (
            {"value": value, "description": variable.description} if variable.description else value
        )
    _write_private(file, json.dumps(document, indent=4, sort_keys=True))
    click.echo(f"{len(document)} variables successfully exported to {file}")


def _write_private(path: Path, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    except OSError as exc:
        raise InvalidInputError(f"cannot write {path}: {exc.strerror}", field="file") from None
