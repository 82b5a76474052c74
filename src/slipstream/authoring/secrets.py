"""Where Variables and Connections come from while a try runs or a DAG file is parsed, and which
of their values count as secret (masked as `***` in the try's log).

The runner (and the parse child) install a SecretsScope for the duration of a try or a parse:
the backend it carries reads what Slipstream stores, built only on the first lookup, so that a
DAG that never reads a Variable never loads the database layer. Outside a scope (plain Python)
lookups read the environment alone.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

# Airflow's [core] sensitive_var_conn_names defaults: a name containing any of them is secret.
SENSITIVE_NAMES = (
    "access_token",
    "api_key",
    "apikey",
    "authorization",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "secret",
    "token",
    "keyfile_dict",
    "service_account",
)
MASK = "***"
# Airflow's [logging] min_length_masked_secret: shorter values would mask ordinary words.
MIN_MASKED_LENGTH = 5


def is_sensitive(name: object) -> bool:
    """Whether a Variable key or an extra's field name looks secret."""
    if not isinstance(name, str):
        return False
    lowered = name.strip().lower()
    return any(word in lowered for word in SENSITIVE_NAMES)


def redact(value: Any, name: object = None) -> Any:
    """`value` with what sits under secret-looking names replaced by `***`, however nested."""
    if is_sensitive(name) and value not in (None, ""):
        return MASK
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, name) for v in value]
    return value


def secret_strings(value: Any, name: object = None) -> list[str]:
    """The strings under secret-looking names in `value` (what a try's log must mask)."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += secret_strings(v, k)
    elif isinstance(value, list | tuple):
        for v in value:
            found += secret_strings(v, name)
    elif is_sensitive(name) and value not in (None, "", True, False):
        found.append(value if isinstance(value, str) else json.dumps(value))
    return found


def secrets_in_json(text: str | None) -> list[str]:
    """The secret-looking fields' values of a JSON object's text (none if it is not one)."""
    if not text or text.lstrip()[:1] not in ("{", "["):
        return []
    try:
        return secret_strings(json.loads(text))
    except ValueError:
        return []


class SecretMasker:
    """The secrets one try has read; `redact` hides them in text bound for its log."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def add(self, value: str | None) -> None:
        if not value or len(value) < MIN_MASKED_LENGTH or value in self._secrets:
            return
        self._secrets.add(value)
        # Longest first, so that a secret containing another is masked whole.
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def redact(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


@dataclass(frozen=True, slots=True)
class SecretsWriter:
    """Who writes a Variable through a scope, for the audit log: the running try (its task's
    owner, as Airflow's task-level log entries name, and the try itself)."""

    owner: str | None = None
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    map_index: int | None = None
    try_number: int | None = None
    logical_date: datetime | None = None


class SecretsBackend(Protocol):
    """Stored Variables and Connections (the database, in Slipstream). Each write records an
    audit entry naming `writer` (None: a DAG file's parse, which no one in particular does)."""

    def get_variable(self, key: str) -> str | None: ...

    def get_connection(self, conn_id: str) -> dict[str, Any] | None:
        """The connection's fields (conn_type, host, schema, login, password, port, extra,
        description), or None."""
        ...

    def set_variable(
        self, key: str, value: str, description: str | None, writer: SecretsWriter | None
    ) -> None: ...

    def update_variable(self, key: str, value: str, writer: SecretsWriter | None) -> bool:
        """False when the key is not stored."""
        ...

    def delete_variable(self, key: str, writer: SecretsWriter | None) -> int: ...

    def close(self) -> None: ...


SecretsBackendFactory = Callable[[], SecretsBackend]


class SecretsScope:
    """One try's or one parse's secrets: the backend (built at its first use), the masker,
    and who writes through it (the try; None in a parse)."""

    def __init__(
        self,
        factory: SecretsBackendFactory | None,
        masker: SecretMasker | None = None,
        writer: SecretsWriter | None = None,
    ) -> None:
        self._factory = factory
        self._backend: SecretsBackend | None = None
        self.masker = masker
        self.writer = writer

    @property
    def backend(self) -> SecretsBackend | None:
        if self._backend is None and self._factory is not None:
            self._backend = self._factory()
        return self._backend

    def mask(self, *values: str | None) -> None:
        if self.masker is not None:
            for value in values:
                self.masker.add(value)

    def close(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            backend.close()


# A ContextVar, as the current context: lookups happen deep in user code with no handle on the
# runner. A scope belongs to the try (or parse) that installed it and ends with it.
_scope: ContextVar[SecretsScope | None] = ContextVar("slipstream_secrets_scope", default=None)


def active_scope() -> SecretsScope | None:
    return _scope.get()


@contextlib.contextmanager
def use_secrets(
    factory: SecretsBackendFactory | None,
    masker: SecretMasker | None = None,
    writer: SecretsWriter | None = None,
) -> Iterator[SecretsScope]:
    """Lookups in the block read the environment, then the backend `factory` builds (at the
    first lookup only); secret values read are added to `masker`; writes are recorded in the
    audit log as `writer`'s."""
    scope = SecretsScope(factory, masker, writer)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
        scope.close()
