"""`slipstream connections ...`: add, get, delete, list, import, export and test stored
Connections, with Airflow's `airflow connections` arguments, in the local database or, with
`--server`, through a server's /api/v1/connections (remote_connections.py). Passwords are
encrypted at rest and shown as `***` (only `export` writes them, to a file of mode 0600)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import click

from slipstream.cli import remote_connections
from slipstream.cli.actor import cli_actor
from slipstream.cli.errors import handle_errors
from slipstream.cli.output import render
from slipstream.cli.remote import Target, open_client, remote_options
from slipstream.cli.settings import open_services
from slipstream.core.secrets import StoredConnection, redact_extra
from slipstream.errors import InvalidInputError
from slipstream.services.connections import build, from_json_text, from_uri

COLUMNS = ["conn_id", "conn_type", "description", "host", "schema", "login", "password", "port"]
FIELD_OPTIONS = {
    "conn_type": "--conn-type",
    "host": "--conn-host",
    "login": "--conn-login",
    "password": "--conn-password",
    "schema": "--conn-schema",
    "port": "--conn-port",
    "extra": "--conn-extra",
    "description": "--conn-description",
}


@click.group()
def connections() -> None:
    """Add, get, delete, list, import, export and test Connections."""


@connections.command("add")
@click.argument("conn_id")
@click.option("--conn-uri", help="The connection as a URI (postgres://user:pass@host/db).")
@click.option("--conn-json", help="The connection as a JSON object of its fields.")
@click.option("--conn-type", help="Its type (postgres, http...); required without a URI.")
@click.option("--conn-host")
@click.option("--conn-login")
@click.option("--conn-password")
@click.option("--conn-schema")
@click.option("--conn-port", type=int)
@click.option("--conn-extra", help="Extra fields, as a JSON object.")
@click.option("--conn-description")
@handle_errors
@remote_options
def add_connection(
    conn_id: str, conn_uri: str | None, conn_json: str | None, remote: Target | None, **given: Any
) -> None:
    """Add CONN_ID (from --conn-uri, --conn-json, or the --conn-* fields)."""
    fields = {name: given[FIELD_OPTIONS[name][2:].replace("-", "_")] for name in FIELD_OPTIONS}
    named = [FIELD_OPTIONS[k] for k, v in fields.items() if v is not None and k != "description"]
    if conn_uri is not None and conn_json is not None:
        raise InvalidInputError("give --conn-uri or --conn-json, not both", field="conn_uri")
    if (conn_uri is not None or conn_json is not None) and named:
        which = "--conn-uri" if conn_uri is not None else "--conn-json"
        raise InvalidInputError(
            f"{which} cannot be given with {', '.join(named)}: the fields come from it",
            field=which,
        )
    if conn_uri is not None:
        connection = from_uri(conn_id, conn_uri)
    elif conn_json is not None:
        connection = from_json_text(conn_id, conn_json)
    else:
        if fields["conn_type"] is None:
            raise InvalidInputError(
                "give --conn-type (or --conn-uri or --conn-json)", field="conn_type"
            )
        if fields["extra"] is not None:
            _check_extra(fields["extra"], "--conn-extra")
        connection = build(conn_id, {k: v for k, v in fields.items() if v is not None})
    if (conn_uri is not None or conn_json is not None) and fields["description"] is not None:
        connection = StoredConnection(
            **{**_as_fields(connection), "description": fields["description"]}, conn_id=conn_id
        )
    if remote is not None:
        remote_connections.add(open_client(remote), connection)
    else:
        open_services().connections.add(connection, by=cli_actor())
    click.echo(f"Successfully added `conn_id`={conn_id}")


@connections.command("get")
@click.argument("conn_id")
@click.option("--output", "-o", type=click.Choice(["table", "json", "yaml"]), default="table")
@handle_errors
@remote_options
def get_connection(conn_id: str, output: str, remote: Target | None) -> None:
    """Show CONN_ID (its password as ***; none through --server, which never answers it)."""
    if remote is not None:
        row = _shown(remote_connections.get(open_client(remote), conn_id))
    else:
        row = _shown(open_services().connections.get(conn_id))
    if output == "yaml":
        click.echo(_yaml().safe_dump([row], sort_keys=False), nl=False)
    else:
        render([row], [*COLUMNS, "extra"], output)


@connections.command("list")
@click.option("--output", "-o", type=click.Choice(["table", "json", "yaml"]), default="table")
@handle_errors
@remote_options
def list_connections(output: str, remote: Target | None) -> None:
    """List the stored connections (passwords as ***; none through --server)."""
    if remote is not None:
        # Only the YAML form shows extra, which the API's list leaves out.
        found = remote_connections.listed(open_client(remote), with_extra=output == "yaml")
    else:
        found = open_services().connections.export_all()
    rows = [_shown(c) for c in found]
    if output == "yaml":
        click.echo(_yaml().safe_dump(rows, sort_keys=False), nl=False)
    else:
        render(rows, COLUMNS, output)


@connections.command("delete")
@click.argument("conn_id")
@handle_errors
@remote_options
def delete_connection(conn_id: str, remote: Target | None) -> None:
    """Delete CONN_ID."""
    if remote is not None:
        remote_connections.delete(open_client(remote), conn_id)
    else:
        open_services().connections.delete(conn_id, by=cli_actor())
    click.echo(f"Successfully deleted connection with `conn_id`={conn_id}")


@connections.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace connections that already exist.")
@handle_errors
@remote_options
def import_connections(file: Path, overwrite: bool, remote: Target | None) -> None:
    """Import connections from a .json, .yaml/.yml or .env file ({conn_id: fields or URI};
    `CONN_ID=URI` lines in an .env file). Existing ids are skipped unless --overwrite."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {file}: {exc.strerror}", field="file") from None
    entries = [_entry(conn_id, value) for conn_id, value in _document(file, text).items()]
    if remote is not None:
        written, skipped = remote_connections.import_all(
            open_client(remote), entries, overwrite=overwrite
        )
    else:
        written, skipped = open_services().connections.import_all(
            entries, overwrite=overwrite, by=cli_actor()
        )
    click.echo(f"Imported {written} connection(s) from {file}; skipped {skipped} existing.")


@connections.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--file-format", type=click.Choice(["json", "yaml", "env"]), default=None)
@handle_errors
@remote_options
def export_connections(file: Path, file_format: str | None, remote: Target | None) -> None:
    """Export every connection (with its password: the file gets mode 0600)."""
    if remote is not None:
        remote_connections.refuse("export")
    form = file_format or file.suffix.lstrip(".").lower().replace("yml", "yaml") or "json"
    if form not in ("json", "yaml", "env"):
        raise InvalidInputError(
            f"unsupported file format {form!r}: use .json, .yaml or .env", field="file"
        )
    found = open_services().connections.export_all()
    if form == "env":
        text = "\n".join(f"{c.conn_id}={_uri(c)}" for c in found)
    else:
        document = {c.conn_id: _export_fields(c) for c in found}
        text = (
            json.dumps(document, indent=2)
            if form == "json"
            else _yaml().safe_dump(document, sort_keys=False)
        )
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    except OSError as exc:
        raise InvalidInputError(f"cannot write {file}: {exc.strerror}", field="file") from None
    click.echo(f"Connections successfully exported to {file}")


@connections.command("test")
@click.argument("conn_id")
@handle_errors
@remote_options
def test_connection(conn_id: str, remote: Target | None) -> None:
    """Test CONN_ID (refused unless SLIPSTREAM_TEST_CONNECTION=Enabled, as in Airflow)."""
    if remote is not None:
        remote_connections.refuse("test")
    services = open_services()
    if not services.connections.test_enabled:
        click.echo(
            "Error: Testing connections is disabled in Slipstream configuration."
            " Set SLIPSTREAM_TEST_CONNECTION=Enabled to enable it.",
            err=True,
        )
        raise SystemExit(1)
    outcome = services.connections.test(services.connections.get(conn_id))
    click.echo(outcome.message)
    raise SystemExit(0 if outcome.status else 1)


def _shown(connection: StoredConnection) -> dict[str, Any]:
    row = _as_fields(connection)
    row["conn_id"] = connection.conn_id
    row["password"] = "***" if connection.password else connection.password
    row["extra"] = redact_extra(connection.extra)
    return row


def _as_fields(connection: StoredConnection) -> dict[str, Any]:
    return {
        "conn_type": connection.conn_type,
        "description": connection.description,
        "host": connection.host,
        "schema": connection.schema,
        "login": connection.login,
        "password": connection.password,
        "port": connection.port,
        "extra": connection.extra,
    }


def _export_fields(connection: StoredConnection) -> dict[str, Any]:
    fields = _as_fields(connection)
    if connection.extra:
        with contextlib.suppress(ValueError):
            fields["extra"] = json.loads(connection.extra)
    return fields


def _uri(connection: StoredConnection) -> str:
    from slipstream.authoring.variables import Connection

    return Connection(conn_id=connection.conn_id, **_as_fields(connection)).get_uri()


def _check_extra(text: str, option: str) -> None:
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"{option} is not valid JSON: {exc}", field=option) from None
    if not isinstance(parsed, dict):
        raise InvalidInputError(f"{option} must be a JSON object", field=option)


def _document(file: Path, text: str) -> dict[str, Any]:
    suffix = file.suffix.lower()
    if suffix == ".env":
        document: Any = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            conn_id, sep, uri = line.partition("=")
            if not sep or not conn_id.strip():
                raise InvalidInputError(f"{file} line {number}: expected CONN_ID=URI", field="file")
            document[conn_id.strip()] = uri.strip()
    elif suffix in (".yaml", ".yml"):
        try:
            document = _yaml().safe_load(text)
        except Exception as exc:  # yaml's errors share no base worth importing eagerly
            raise InvalidInputError(f"{file} is not valid YAML: {exc}", field="file") from None
    elif suffix == ".json":
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"{file} is not valid JSON: {exc}", field="file") from None
    else:
        raise InvalidInputError(
            f"unsupported file format {suffix!r}: use .json, .yaml or .env", field="file"
        )
    if not isinstance(document, dict):
        raise InvalidInputError(f"{file} must map connection ids to connections", field="file")
    return document


def _entry(conn_id: str, value: Any) -> StoredConnection:
    if isinstance(value, str):
        return from_uri(conn_id, value)
    if not isinstance(value, dict):
        raise InvalidInputError(f"connection {conn_id!r} must be a URI or an object", field="file")
    fields = {k: v for k, v in value.items() if k != "conn_id"}
    if isinstance(fields.get("extra"), dict):
        fields["extra"] = json.dumps(fields["extra"])
    return build(conn_id, fields, where=f"{conn_id}.")


def _yaml() -> Any:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise InvalidInputError(
            "YAML needs the PyYAML package (pip install pyyaml); use JSON instead", field="output"
        ) from None
    return yaml
