"""Airflow Variables and Connections as task code reads them, and the `var` and `conn` objects
that templates read them through (`{{ var.value.x }}`, `{{ conn.my_db.host }}`).

As in Airflow the environment comes first (`AIRFLOW_VAR_<KEY>`, `AIRFLOW_CONN_<ID>` as a URI or
JSON; Slipstream also reads `SLIPSTREAM_VAR_`/`SLIPSTREAM_CONN_`), then, while a try runs or a
DAG file is parsed, what Slipstream stores (authoring.secrets). Nothing is cached: each call
reads afresh.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from slipstream.authoring.exceptions import AirflowException, AirflowNotFoundException
from slipstream.authoring.params import NOTSET, ArgNotSet
from slipstream.authoring.secrets import (
    SecretsBackend,
    SecretsWriter,
    active_scope,
    is_sensitive,
    secrets_in_json,
)

VARIABLE_PREFIX = "AIRFLOW_VAR_"
CONNECTION_PREFIX = "AIRFLOW_CONN_"
# Airflow's query key for an `extra` that is not a flat string mapping.
_EXTRA_KEY = "__extra__"


class Variable:
    """Airflow's Variable: the environment first (`AIRFLOW_VAR_<KEY>`, `SLIPSTREAM_VAR_<KEY>`,
    key upper-cased), then, in a running try or a DAG file's parse, what Slipstream stores."""

    def __init__(self, key: str | None = None, val: Any = None, description: str | None = None):
        self.key = key
        self.val = val
        self.description = description

    @classmethod
    def get(
        cls,
        key: str,
        default_var: Any = NOTSET,
        deserialize_json: bool = False,
        *,
        default: Any = NOTSET,
    ) -> Any:
        """The variable's value (parsed as JSON with deserialize_json); the default when it is
        not set, else KeyError as in Airflow. `default` is Airflow 3's name for default_var."""
        fallback = default if isinstance(default_var, ArgNotSet) else default_var
        text = _variable_text(key)
        if text is None:
            if isinstance(fallback, ArgNotSet):
                raise KeyError(f"Variable {key} does not exist")
            return fallback
        if not deserialize_json:
            return text
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"Variable {key} is not valid JSON: {exc}") from None

    @classmethod
    def set(
        cls,
        key: str,
        value: Any,
        description: str | None = None,
        serialize_json: bool = False,
        **kwargs: Any,
    ) -> None:
        """Store the variable (a running try or a DAG file's parse only). A value also set in
        the environment keeps being read from there, as in Airflow, which warns about it."""
        _refuse_arguments("Variable.set", kwargs)
        backend, writer = _writable_backend(f"Variable.set({key!r})")
        text = json.dumps(value, indent=2) if serialize_json else str(value)
        if _environment_variable(key) is not None:
            _log.warning(
                "Variable %s is set in the environment (%s%s), which is read before what is"
                " stored: the stored value will not be seen while it is",
                key,
                VARIABLE_PREFIX,
                key.upper(),
            )
        backend.set_variable(key, text, description, writer)
        _note_variable(key, text)

    @classmethod
    def update(cls, key: str, value: Any, serialize_json: bool = False, **kwargs: Any) -> None:
        """Change a stored variable's value; KeyError if it does not exist."""
        _refuse_arguments("Variable.update", kwargs)
        backend, writer = _writable_backend(f"Variable.update({key!r})")
        if _environment_variable(key) is not None:
            raise AttributeError(
                f"Variable {key} is set in the environment ({VARIABLE_PREFIX}{key.upper()}) and"
                " can't be updated"
            )
        text = json.dumps(value, indent=2) if serialize_json else str(value)
        if not backend.update_variable(key, text, writer):
            raise KeyError(f"Variable {key} does not exist")
        _note_variable(key, text)

    @classmethod
    def delete(cls, key: str, **kwargs: Any) -> int:
        """Delete a stored variable; how many were deleted (0 or 1)."""
        _refuse_arguments("Variable.delete", kwargs)
        backend, writer = _writable_backend(f"Variable.delete({key!r})")
        return backend.delete_variable(key, writer)

    @classmethod
    def setdefault(
        cls, key: str, default: Any, description: str | None = None, deserialize_json: bool = False
    ) -> Any:
        """The value if set; otherwise store `default` (as JSON with deserialize_json) and
        return it."""
        try:
            return cls.get(key, deserialize_json=deserialize_json)
        except KeyError:
            if default is None:
                raise ValueError("Default Value must be set") from None
            cls.set(key, default, description=description, serialize_json=deserialize_json)
            return default


_log = logging.getLogger(__name__)
# Slipstream's own spelling, beside Airflow's.
SLIPSTREAM_VARIABLE_PREFIX = "SLIPSTREAM_VAR_"
SLIPSTREAM_CONNECTION_PREFIX = "SLIPSTREAM_CONN_"


def _environment_variable(key: str) -> str | None:
    name = key.upper()
    text = os.environ.get(VARIABLE_PREFIX + name)
    return os.environ.get(SLIPSTREAM_VARIABLE_PREFIX + name) if text is None else text


def _variable_text(key: str) -> str | None:
    text = _environment_variable(key)
    if text is None:
        scope = active_scope()
        backend = None if scope is None else scope.backend
        if backend is not None:
            text = backend.get_variable(key)
    if text is not None:
        _note_variable(key, text)
    return text


def _note_variable(key: str, text: str) -> None:
    """Mask in the try's log what a secret-looking variable holds."""
    scope = active_scope()
    if scope is None:
        return
    if is_sensitive(key):
        scope.mask(text)
    scope.mask(*secrets_in_json(text))


def _writable_backend(what: str) -> tuple[SecretsBackend, SecretsWriter | None]:
    """The active scope's backend and who writes through it (for the audit log)."""
    scope = active_scope()
    backend = None if scope is None else scope.backend
    if scope is None or backend is None:
        raise NotImplementedError(
            f"{what} stores a variable, which Slipstream does in a running task or while"
            " parsing a DAG file; outside them use `slipstream variables set` or the REST API"
        )
    return backend, scope.writer


def _refuse_arguments(what: str, kwargs: Mapping[str, Any]) -> None:
    # Airflow 2's session= is ours to manage: accepted and unused, as Airflow 3 does.
    unknown = sorted(set(kwargs) - {"session"})
    if unknown:
        raise TypeError(f"{what} got unexpected keyword arguments: {', '.join(unknown)}")


class Connection:
    """Airflow's Connection, read from `AIRFLOW_CONN_<ID>` (a URI such as
    `postgres://user:pass@host:5432/db?sslmode=require`, or a JSON object of its fields)."""

    def __init__(
        self,
        conn_id: str | None = None,
        conn_type: str | None = None,
        description: str | None = None,
        host: str | None = None,
        login: str | None = None,
        password: str | None = None,
        schema: str | None = None,
        port: int | None = None,
        extra: str | Mapping[str, Any] | None = None,
        uri: str | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.description = description
        self.conn_type = conn_type
        self.host = host
        self.login = login
        self.password = password
        self.schema = schema
        self.port = port
        self.extra: str | None = json.dumps(extra) if isinstance(extra, Mapping) else extra
        if uri is not None:
            if any(v is not None for v in (conn_type, host, login, password, schema, port)):
                raise AirflowException("give a connection either a uri or its fields, not both")
            self._fill_from_uri(uri)

    def __repr__(self) -> str:
        return f"<Connection {self.conn_id}>"

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """`extra` parsed as a JSON object ({} when empty or not a JSON object)."""
        if not self.extra:
            return {}
        try:
            parsed = json.loads(self.extra)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    # -- lookup -------------------------------------------------------------------------------

    @classmethod
    def get_connection_from_secrets(cls, conn_id: str) -> Connection:
        """The connection `conn_id`; AirflowNotFoundException when it is not defined."""
        name = conn_id.upper()
        text = os.environ.get(CONNECTION_PREFIX + name)
        if text is None:
            text = os.environ.get(SLIPSTREAM_CONNECTION_PREFIX + name)
        scope = active_scope()
        if text is not None:
            if text.lstrip().startswith("{"):
                found = cls.from_json(text, conn_id=conn_id)
            else:
                found = cls(conn_id=conn_id, uri=text)
        else:
            backend = None if scope is None else scope.backend
            fields = None if backend is None else backend.get_connection(conn_id)
            if fields is None:
                raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")
            found = cls(conn_id=conn_id, **fields)
        if scope is not None:
            scope.mask(found.password, *secrets_in_json(found.extra))
        return found

    @classmethod
    def get(cls, conn_id: str) -> Connection:
        """Airflow 3's name for get_connection_from_secrets."""
        return cls.get_connection_from_secrets(conn_id)

    @classmethod
    def from_json(cls, value: str, conn_id: str | None = None) -> Connection:
        try:
            fields = json.loads(value)
        except ValueError as exc:
            raise AirflowException(f"connection {conn_id!r} is not valid JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise AirflowException(f"connection {conn_id!r} must be a JSON object")
        known = {"conn_type", "description", "host", "login", "password", "schema", "port"}
        unknown = sorted(set(fields) - known - {"extra", "conn_id"})
        if unknown:
            raise AirflowException(f"connection {conn_id!r} has unknown fields: {unknown}")
        port = fields.get("port")
        try:
            port = int(port) if port not in (None, "") else None
        except (TypeError, ValueError):
            raise AirflowException(f"port of connection {conn_id!r} is not a number") from None
        arguments = {name: fields.get(name) for name in known - {"port"}}
        return cls(conn_id=conn_id, port=port, extra=fields.get("extra"), **arguments)

    def _fill_from_uri(self, uri: str) -> None:
        schemes = uri.count("://")
        if schemes == 0 or schemes > 2:
            raise AirflowException(f"Invalid connection string: {uri}.")
        scheme, _, rest = uri.partition("://")
        self.conn_type = "postgres" if scheme == "postgresql" else scheme.replace("-", "_")
        protocol = None
        if schemes == 2:  # an http host keeps its protocol: `http://https://host` style
            protocol, _, rest = rest.partition("://")
            if "@" in protocol or ":" in protocol:
                raise AirflowException(f"Invalid connection string: {uri}.")
        parts = urlsplit("//" + rest)
        host = _host_of(parts.netloc)
        self.host = f"{protocol}://{host}" if protocol else host
        self.schema = unquote(parts.path[1:]) if parts.path[1:] else ""
        self.login = unquote(parts.username) if parts.username else parts.username
        self.password = unquote(parts.password) if parts.password else parts.password
        self.port = parts.port
        if parts.query:
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            self.extra = query[_EXTRA_KEY] if _EXTRA_KEY in query else json.dumps(query)

    def get_uri(self) -> str:
        """The connection as Airflow's URI form (what AIRFLOW_CONN_<ID> may hold)."""
        conn_type = (self.conn_type or "").lower().replace("_", "-")
        uri = f"{conn_type}://" if conn_type else "//"
        host = self.host or ""
        if "://" in host:
            protocol, host = host.split("://", 1)
            uri += f"{protocol}://"
        authority = ""
        if self.login is not None:
            authority += quote(self.login, safe="")
        if self.password is not None:
            authority += ":" + quote(self.password, safe="")
        if authority:
            uri += authority + "@"
        location = quote(host, safe="")
        if self.port:
            location += f":{self.port}" if location or authority else f"@:{self.port}"
        if self.schema:
            location += "/" + quote(self.schema, safe="")
        uri += location
        if self.extra:
            extra = self.extra_dejson
            flat = bool(extra) and all(isinstance(v, str) for v in extra.values())
            query = urlencode(extra) if flat else urlencode({_EXTRA_KEY: self.extra})
            uri += ("?" if self.schema else "/?") + query
        return uri


def _host_of(netloc: str) -> str:
    """The host part of a netloc, unquoted and with its case kept (urlsplit lowercases it)."""
    host = netloc.rsplit("@", 1)[-1]
    if host.startswith("["):  # an IPv6 literal keeps its colons
        host = host[: host.find("]") + 1]
    elif ":" in host:
        host = host.split(":", 1)[0]
    return unquote(host)


class BaseHook:
    """The part of Airflow's BaseHook that DAG files use: looking up a connection."""

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        return Connection.get_connection_from_secrets(conn_id)


# -- template accessors: what {{ var }} and {{ conn }} are in a task's context ------------------


class VariableValues:
    """`var.value` (text) or `var.json` (parsed): `{{ var.value.key }}`, `.get(key, default)`."""

    def __init__(self, *, deserialize_json: bool) -> None:
        self._deserialize_json = deserialize_json

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return Variable.get(key, deserialize_json=self._deserialize_json)

    def get(self, key: str, default_var: Any = NOTSET) -> Any:
        return Variable.get(key, default_var, deserialize_json=self._deserialize_json)

    def __repr__(self) -> str:
        return f"<var.{'json' if self._deserialize_json else 'value'}>"


class VariableAccessor:
    """The `var` of a template context."""

    def __init__(self) -> None:
        self.value = VariableValues(deserialize_json=False)
        self.json = VariableValues(deserialize_json=True)


class ConnectionAccessor:
    """The `conn` of a template context: `{{ conn.my_db.host }}`, `{{ conn.get('my_db') }}`."""

    def __getattr__(self, conn_id: str) -> Connection:
        if conn_id.startswith("__"):
            raise AttributeError(conn_id)
        return Connection.get_connection_from_secrets(conn_id)

    def get(self, conn_id: str, default_conn: Any = None) -> Any:
        try:
            return Connection.get_connection_from_secrets(conn_id)
        except AirflowNotFoundException:
            return default_conn


def template_accessors() -> dict[str, Any]:
    """The `var` and `conn` entries of a task's context."""
    return {"var": VariableAccessor(), "conn": ConnectionAccessor()}
