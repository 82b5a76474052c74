"""A picklable recipe for the secrets backend of a try or a DAG file's parse, cheap to unpickle.

It travels to each local worker over its socket (never a command line: the database URL and
the Fernet keys are secrets). The database layer and `cryptography` load only when a DAG file
or a task actually reads a stored Variable or Connection; others never pay for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
