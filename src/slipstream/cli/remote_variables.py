"""The remote form of `slipstream variables ...`, through a server's /api/v1/variables, giving
`variables.py` what the local database would. A server answers a secret-looking key's value
as `***`: the commands that would print or write such a value refuse, naming the keys."""

from __future__ import annotations

from collections.abc import Mapping

import click

from slipstream.authoring.secrets import is_sensitive
from slipstream.cli.remote import Client, path
from slipstream.core.secrets import StoredVariable
from slipstream.errors import (
    InvalidInputError,
    NotFoundError,
    SlipstreamError,
    VariableAlreadyExists,
    VariableNotFound,
)
from slipstream.services.variables import ImportOutcome, OnExisting, check_entries


def _refuse_masked(keys: list[str]) -> None:
    if keys:
        raise InvalidInputError(
            f"the server answers the value of {', '.join(map(repr, keys))} as '***' (the key "
            "looks secret), so it cannot be read through --server: run the command on the "
            "server's host, without --server",
            field="server",
        )


def _get(client: Client, key: str) -> StoredVariable:
    try:
        body = client.get(path("variables", key))
    except NotFoundError:
        raise VariableNotFound(key) from None
    return StoredVariable(key=key, val=body.get("value") or "", description=body.get("description"))


def get(client: Client, key: str) -> StoredVariable:
    found = _get(client, key)
    _refuse_masked([key] if is_sensitive(key) else [])
    return found


def exists(client: Client, key: str) -> bool:
    try:
        _get(client, key)
    except VariableNotFound:
        return False
    return True


def set_variable(client: Client, key: str, value: str, description: str | None) -> None:
    """Create or overwrite, as the local `variables set` (the description is replaced too)."""
    client.request(
        "POST", path("variables"), json={"key": key, "value": value, "description": description}
    )


def delete(client: Client, key: str) -> None:
    try:
        client.request("DELETE", path("variables", key))
    except NotFoundError:
        raise VariableNotFound(key) from None


def listed(client: Client) -> list[StoredVariable]:
    """Every key and description, in key order (the API's list has no values)."""
    return [
        StoredVariable(key=item["key"], val="", description=item.get("description"))
        for item in client.pages(path("variables"), "variables", order_by="key")
    ]


def export_all(client: Client) -> list[StoredVariable]:
    """Every variable with its value; refused, before any value is read, if a key looks
    secret (the file would hold `***` instead of its value)."""
    keys = [v.key for v in listed(client)]
    _refuse_masked([key for key in keys if is_sensitive(key)])
    return [_get(client, key) for key in keys]


def import_all(
    client: Client, entries: Mapping[str, tuple[str, str | None]], on_existing: OnExisting
) -> ImportOutcome:
    """As the local import, one key at a time: every entry is checked and, with `fail`, every
    key looked up before anything is written. The API has no transaction over several keys,
    so a refusal part way leaves the earlier ones written: the message says which."""
    check_entries(entries)
    found = {key: exists(client, key) for key in entries}
    if on_existing is OnExisting.FAIL:
        for key, present in found.items():
            if present:
                raise VariableAlreadyExists(key)
    created = overwritten = skipped = 0
    written: list[str] = []
    for key, (value, description) in entries.items():
        if found[key] and on_existing is OnExisting.SKIP:
            skipped += 1
            continue
        try:
            set_variable(client, key, value, description)
        except SlipstreamError:
            done = ", ".join(written) if written else "none"
            click.echo(
                f"Stopped at variable {key!r}; variables written before it: {done}", err=True
            )
            raise
        written.append(key)
        if found[key]:
            overwritten += 1
        else:
            created += 1
    return ImportOutcome(created=created, overwritten=overwritten, skipped=skipped)
