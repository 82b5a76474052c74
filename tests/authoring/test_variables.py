"""Variables and Connections from Airflow's environment secrets backend, and the template
accessors `var` and `conn`."""

from __future__ import annotations

import json

import jinja2
import pytest

from slipstream.authoring.exceptions import AirflowException, AirflowNotFoundException
from slipstream.authoring.variables import (
    BaseHook,
    Connection,
    Variable,
    template_accessors,
)


def test_variable_get_reads_the_environment_by_upper_cased_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_TARGET_TABLE", "sales")
    monkeypatch.setenv("AIRFLOW_VAR_LIMITS", '{"rows": 10}')
    assert Variable.get("target_table") == "sales"
    assert Variable.get("limits", deserialize_json=True) == {"rows": 10}
    assert Variable.get("missing", default_var="fallback") == "fallback"
    assert Variable.get("missing", None) is None
    assert Variable.get("missing", default=3) == 3  # Airflow 3's keyword
    with pytest.raises(KeyError, match="Variable missing does not exist"):
        Variable.get("missing")
    monkeypatch.setenv("AIRFLOW_VAR_BROKEN", "{nope")
    with pytest.raises(ValueError, match="Variable broken is not valid JSON"):
        Variable.get("broken", deserialize_json=True)


def test_variable_writes_outside_a_try_are_refused_clearly() -> None:
    for write in (
        lambda: Variable.set("k", "v"),
        lambda: Variable.update("k", "v"),
        lambda: Variable.delete("k"),
        lambda: Variable.setdefault("never_set_anywhere", "v"),
    ):
        with pytest.raises(NotImplementedError, match="slipstream variables set"):
            write()


def test_connection_from_a_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        "postgresql://ana%40corp:p%2Fss@DB.example.com:5433/sales%20db?sslmode=require&x=1",
    )
    conn = Connection.get_connection_from_secrets("warehouse")
    assert conn.conn_id == "warehouse" and conn.conn_type == "postgres"
    assert (conn.host, conn.port, conn.schema) == ("DB.example.com", 5433, "sales db")
    assert (conn.login, conn.password) == ("ana@corp", "p/ss")
    assert conn.extra_dejson == {"sslmode": "require", "x": "1"}
    assert Connection.get("warehouse").host == "DB.example.com"
    assert BaseHook.get_connection("warehouse").login == "ana@corp"
    again = Connection(conn_id="again", uri=conn.get_uri())
    assert (again.host, again.port, again.schema, again.login, again.password) == (
        conn.host,
        conn.port,
        conn.schema,
        conn.login,
        conn.password,
    )
    assert again.extra_dejson == conn.extra_dejson


def test_connection_uri_with_a_protocol_in_the_host_and_a_nested_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_API", "http://https://api.example.com/v1")
    conn = Connection.get("api")
    assert conn.conn_type == "http" and conn.host == "https://api.example.com"
    assert conn.schema == "v1"
    nested = Connection(conn_type="my_type", host="h", extra={"a": {"b": 1}})
    assert nested.get_uri().startswith("my-type://h/?__extra__=")
    assert Connection(conn_id="n", uri=nested.get_uri()).extra_dejson == {"a": {"b": 1}}


def test_connection_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_S3",
        json.dumps({"conn_type": "aws", "login": "key", "port": "443", "extra": {"region": "eu"}}),
    )
    conn = Connection.get("s3")
    assert (conn.conn_type, conn.login, conn.port) == ("aws", "key", 443)
    assert conn.extra_dejson == {"region": "eu"}
    monkeypatch.setenv("AIRFLOW_CONN_ODD", '{"hots": "typo"}')
    with pytest.raises(AirflowException, match="hots"):
        Connection.get("odd")


def test_a_missing_connection_is_not_found_as_in_airflow() -> None:
    with pytest.raises(AirflowNotFoundException, match="The conn_id `nowhere` isn't defined"):
        Connection.get_connection_from_secrets("nowhere")
    with pytest.raises(AirflowException, match="Invalid connection string"):
        Connection(uri="not a uri")


def test_template_accessors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_REGION", "eu-west-1")
    monkeypatch.setenv("AIRFLOW_VAR_CFG", '{"batch": 5}')
    monkeypatch.setenv("AIRFLOW_CONN_MY_DB", "mysql://u:p@db.local:3306/shop")
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    context = template_accessors()
    template = (
        "{{ var.value.region }} {{ var.json.cfg.batch }} {{ var.value.get('none', 'd') }} "
        "{{ conn.my_db.host }}:{{ conn.my_db.port }} {{ conn.get('none') }}"
    )
    assert environment.from_string(template).render(context) == "eu-west-1 5 d db.local:3306 None"
    with pytest.raises(KeyError, match="Variable absent does not exist"):
        environment.from_string("{{ var.value.absent }}").render(context)
    with pytest.raises(AirflowNotFoundException):
        environment.from_string("{{ conn.absent.host }}").render(context)
