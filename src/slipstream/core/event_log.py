"""The audit (event) log as the core sees it: one entry per action a person or a client took,
in Airflow's `log` table's terms, and the event names Slipstream writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

# Event names, as Airflow's where it has one (a REST action is named by its operation).
TRIGGER = "trigger"
PAUSE = "paused"
UNPAUSE = "unpaused"
CLEAR = "clear"
MARK_RUN = "mark_run"  # extra names the state
MARK_TASK_INSTANCES = "mark_task_instances"
DELETE_RUN = "delete_dag_run"
POOL_SET = "pool_set"
POOL_DELETE = "pool_delete"
USER_CREATE = "user_create"
USER_CHANGE = "user_change"
USER_DELETE = "user_delete"
ROLE_CREATE = "role_create"
ROLE_CHANGE = "role_change"
ROLE_DELETE = "role_delete"
TOKEN_CREATE = "token_create"
TOKEN_REVOKE = "token_revoke"
SIGN_IN = "login"  # extra names the door: form, basic, token
SIGN_IN_FAILED = "login_failed"
# Variables and Connections: Airflow's `<resource>.<create|edit|delete>` (its REST API's and
# web views' names). An entry names the key or conn_id and which fields were written, never a
# value. A create-or-overwrite (`Variable.set`, POST /variables) is named by what it did.
VARIABLE_CREATE = "variable.create"
VARIABLE_EDIT = "variable.edit"
VARIABLE_DELETE = "variable.delete"
VARIABLE_IMPORT = "variable.varimport"  # Airflow's web import; one entry naming the keys
CONNECTION_CREATE = "connection.create"
CONNECTION_EDIT = "connection.edit"
CONNECTION_DELETE = "connection.delete"
CONNECTION_IMPORT = "connection.import"  # no Airflow name (its CLI's only): one entry, the ids
ROTATE_FERNET_KEY = "rotate_fernet_key"  # Airflow's CLI logs it as cli_rotate_fernet_key
# `db clean`, as Airflow's CLI names it (after the function behind the command); extra holds
# the cutoff, the tables and how many rows each lost.
DB_CLEAN = "cli_cleanup_tables"

# Keys that name a secret: refused in `extra` by the store, whoever writes it.
# "val"/"value": what a Variable's value would be stored under, were a caller to slip.
SECRET_KEYS = frozenset(
    {"password", "token", "secret", "api_key", "session", "csrf_token", "val", "value"}
)


@dataclass(frozen=True, slots=True)
class EventLogEntry:
    id: int
    dttm: datetime
    event: str
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    map_index: int | None = None
    try_number: int | None = None
    logical_date: datetime | None = None
    owner: str | None = None
    owner_display_name: str | None = None
    extra: str | None = None  # JSON text


@dataclass(frozen=True, slots=True)
class EventFilter:
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    event: str | None = None
    owner: str | None = None
    before: datetime | None = None
    after: datetime | None = None
    included_events: Sequence[str] | None = None
    excluded_events: Sequence[str] | None = None
