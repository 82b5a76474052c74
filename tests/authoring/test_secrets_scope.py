"""The secrets scope a try or a parse installs: the environment first, then the backend (built
only when the environment did not answer), secret values fed to the masker, and nothing of it
left once the scope ends."""

from __future__ import annotations

from typing import Any

import pytest

from slipstream.authoring.exceptions import AirflowNotFoundException
from slipstream.authoring.secrets import SecretMasker, SecretsWriter, use_secrets
from slipstream.authoring.variables import BaseHook, Connection, Variable


class MemoryBackend:
    """The SecretsBackend protocol over dicts: the in-memory seam for these tests."""

    built = 0

    def __init__(self) -> None:
        MemoryBackend.built += 1
        self.variables: dict[str, str] = {"stored": "from the store", "db_password": "pw-12345"}
        self.connections: dict[str, dict[str, Any]] = {
            "warehouse": {"conn_type": "postgres", "host": "h", "password": "conn-pw-1",
                          "extra": '{"private_key": "pk-67890", "region": "eu"}'},
        }  # fmt: skip
        self.closed = False

    def get_variable(self, key: str) -> str | None:
        return self.variables.get(key)

    def get_connection(self, conn_id: str) -> dict[str, Any] | None:
        return self.connections.get(conn_id)

    def set_variable(
        self, key: str, value: str, description: str | None, writer: SecretsWriter | None
    ) -> None:
        self.variables[key] = value

    def update_variable(self, key: str, value: str, writer: SecretsWriter | None) -> bool:
        if key not in self.variables:
            return False
        self.variables[key] = value
        return True

    def delete_variable(self, key: str, writer: SecretsWriter | None) -> int:
        return 1 if self.variables.pop(key, None) is not None else 0

    def close(self) -> None:
        self.closed = True


def test_environment_first_then_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = MemoryBackend()
    monkeypatch.setenv("AIRFLOW_VAR_STORED", "from airflow env")
    monkeypatch.setenv("SLIPSTREAM_VAR_OTHER", "from slipstream env")
    with use_secrets(lambda: backend):
        assert Variable.get("stored") == "from airflow env"
        assert Variable.get("other") == "from slipstream env"
        monkeypatch.delenv("AIRFLOW_VAR_STORED")
        assert Variable.get("stored") == "from the store"
    assert backend.closed
    with pytest.raises(KeyError):
        Variable.get("stored")  # outside the scope: the environment only


def test_the_backend_is_built_only_when_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_HERE", "x")
    before = MemoryBackend.built
    with use_secrets(MemoryBackend):
        assert Variable.get("here") == "x"
    assert MemoryBackend.built == before


def test_writes_and_setdefault_in_a_scope() -> None:
    backend = MemoryBackend()
    with use_secrets(lambda: backend):
        Variable.set("cfg", {"a": 1}, serialize_json=True)
        assert Variable.get("cfg", deserialize_json=True) == {"a": 1}
        Variable.update("cfg", "plain")
        assert backend.variables["cfg"] == "plain"
        with pytest.raises(KeyError, match="Variable nothing does not exist"):
            Variable.update("nothing", "x")
        assert Variable.setdefault("fresh", "d") == "d"
        assert backend.variables["fresh"] == "d"
        assert Variable.delete("fresh") == 1 and Variable.delete("fresh") == 0
        with pytest.raises(TypeError, match="bogus"):
            Variable.set("k", "v", bogus=True)


def test_secrets_read_are_masked() -> None:
    masker = SecretMasker()
    with use_secrets(MemoryBackend, masker):
        Variable.get("stored")
        Variable.get("db_password")
        conn = BaseHook.get_connection("warehouse")
        assert Connection.get("warehouse").host == "h"
        with pytest.raises(AirflowNotFoundException, match="The conn_id `nope` isn't defined"):
            BaseHook.get_connection("nope")
    text = f"{conn.password} pw-12345 pk-67890 from the store eu"
    assert masker.redact(text) == "*** *** *** from the store eu"
