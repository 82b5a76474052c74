"""A picklable recipe for the secrets backend of a try or a DAG file's parse, cheap to unpickle;
and the recipe for none (a database that cannot serve them).

It travels to each local worker over its socket (never a command line: the database URL and
the Fernet keys are secrets). The database layer and `cryptography` load only when a DAG file
or a task actually reads a stored Variable or Connection; others never pay for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from slipstream.errors import ConfigError

if TYPE_CHECKING:
    from slipstream.authoring.secrets import SecretsWriter
    from slipstream.services.stored_secrets import StoredSecrets


@dataclass(frozen=True, slots=True)
class StoredSecretsFactory:
    database_url: str = field(repr=False)
    fernet_keys: tuple[str, ...] = field(repr=False)
    key_file: str

    def __call__(self) -> StoredSecrets:
        # Deferred on purpose (see the module docstring).
        from slipstream.services.stored_secrets import StoredSecrets

        return StoredSecrets(self.database_url, self.fernet_keys, self.key_file)


@dataclass(frozen=True, slots=True)
class NoStoredSecrets:
    """The recipe for when the metadata database cannot serve Variables and Connections (`dags
    test` on an install not migrated): nothing is found stored (the environment is read first,
    as ever), and a write fails saying `why` rather than vanishing."""

    why: str

    def __call__(self) -> _NothingStored:
        return _NothingStored(self.why)


class _NothingStored:
    """A SecretsBackend with nothing stored and nowhere to store."""

    def __init__(self, why: str) -> None:
        self._why = why

    def get_variable(self, key: str) -> str | None:
        return None

    def get_connection(self, conn_id: str) -> dict[str, Any] | None:
        return None

    def set_variable(
        self, key: str, value: str, description: str | None, writer: SecretsWriter | None
    ) -> None:
        self._refuse(f"Variable {key!r}")

    def update_variable(self, key: str, value: str, writer: SecretsWriter | None) -> bool:
        self._refuse(f"Variable {key!r}")

    def delete_variable(self, key: str, writer: SecretsWriter | None) -> int:
        self._refuse(f"Variable {key!r}")

    def close(self) -> None:
        pass

    def _refuse(self, what: str) -> NoReturn:
        raise ConfigError("database", f"{self._why}: {what} cannot be stored")
