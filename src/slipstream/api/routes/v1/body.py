"""Checking a JSON request body's fields as Airflow 2's Connexion and marshmallow did, in their
words: read-only properties, unknown fields, missing required ones, wrong types, and the
`update_mask` query parameter of PATCH routes."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from slipstream.errors import InvalidInputError


def check_fields(
    body: Mapping[str, Any],
    *,
    writable: Collection[str],
    read_only: Collection[str] = (),
    required: Iterable[str] = (),
) -> None:
    """400 for a read-only property sent, an unknown field or a missing required one."""
    for name in body:
        if name in read_only:
            raise InvalidInputError(f"Property is read-only - '{name}'", field=name)
    unknown = [name for name in body if name not in writable]
    if unknown:
        detail = ", ".join(f"'{name}': ['Unknown field.']" for name in sorted(unknown))
        raise InvalidInputError(f"{{{detail}}}", field=unknown[0])
    missing = [name for name in required if name not in body]
    if missing:
        detail = ", ".join(f"'{name}': ['Missing data for required field.']" for name in missing)
        raise InvalidInputError(f"{{{detail}}}", field=missing[0])


def string(body: Mapping[str, Any], name: str, *, min_length: int = 0) -> str | None:
    """The field as a string, None when absent; 400 in Connexion's words when it is not one."""
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, str):
        raise InvalidInputError(f"{value!r} is not of type 'string' - '{name}'", field=name)
    if len(value) < min_length:
        raise InvalidInputError(f"{value!r} is too short - '{name}'", field=name)
    return value


def array(body: Mapping[str, Any], name: str) -> list[Any] | None:
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, list):
        raise InvalidInputError(f"{value!r} is not of type 'array' - '{name}'", field=name)
    return value


def name_of(item: Any, where: str) -> str:
    """The `name` of a `{"name": "..."}` object, as roles and actions are sent."""
    if not isinstance(item, dict):
        raise InvalidInputError(f"{item!r} is not of type 'object' - '{where}'", field=where)
    value = item.get("name")
    if not isinstance(value, str):
        raise InvalidInputError(f"{value!r} is not of type 'string' - '{where}.name'", field=where)
    return value


def update_mask(raw: list[str] | None) -> list[str] | None:
    """`update_mask` as field names: sent comma-separated, repeated, or both."""
    if raw is None:
        return None
    return [part.strip() for value in raw for part in value.split(",") if part.strip()]
