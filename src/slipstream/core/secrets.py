"""Stored Variables and Connections as records, and a connection's `extra` as the API shows it
(fields under secret-looking names masked, see authoring.secrets)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from slipstream.authoring.secrets import MASK, redact


def redact_extra(extra: str | None) -> str | None:
    """A connection's `extra` (JSON text) with its secret-looking fields masked; text that is
    not a JSON object is masked whole, since nothing says which part of it is secret."""
    if not extra:
        return extra
    try:
        parsed = json.loads(extra)
    except ValueError:
        return MASK
    if not isinstance(parsed, dict):
        return MASK
    return json.dumps(redact(parsed))


@dataclass(frozen=True, slots=True)
class StoredVariable:
    key: str
    val: str = field(repr=False)
    description: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredConnection:
    """A connection's fields as Airflow names them (conn_id, conn_type, host, schema...)."""

    conn_id: str
    conn_type: str
    description: str | None = None
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None
    extra: str | None = field(default=None, repr=False)
    id: int | None = None

    def fields(self) -> dict[str, Any]:
        """What authoring's Connection is built from."""
        return {
            "conn_type": self.conn_type,
            "description": self.description,
            "host": self.host,
            "schema": self.schema,
            "login": self.login,
            "password": self.password,
            "port": self.port,
            "extra": self.extra,
        }
