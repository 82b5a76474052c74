"""The metadata schema: every table and index, declared once with SQLAlchemy Core.

Hot tables (runs, task_instances) are indexed for the scheduler's per-pass queries and for
listing at 100k runs; task_tries keeps one row per try as history the scheduler never scans.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python; timestamptz on PostgreSQL, naive UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Naming convention keeps Alembic's generated constraint names stable across databases.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JsonType = JSON

dags = Table(
    "dags",
    metadata,
    Column("dag_id", String(250), primary_key=True),
    Column("is_paused", Boolean, nullable=False, default=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("fileloc", Text, nullable=False),
    Column("version_id", Integer, nullable=True),
    Column("version_hash", String(64), nullable=True),
    Column("description", Text, nullable=True),
    Column("tags", JsonType, nullable=False, default=list),
    Column("owners", String(500), nullable=False, default="airflow"),
    Column("schedule", String(250), nullable=True),
    Column("max_active_runs", Integer, nullable=False, default=16),
    Column("max_active_tasks", Integer, nullable=False, default=16),
    # The next scheduled interval (Airflow's next_dagrun*): its start is the logical date,
    # and the run may be created once its end has passed. NULL: not computed yet.
    Column("next_dagrun_data_interval_start", UtcDateTime, nullable=True),
    Column("next_dagrun_data_interval_end", UtcDateTime, nullable=True),
    Column("next_dagrun_create_after", UtcDateTime, nullable=True),
    Column("last_parsed_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # On PostgreSQL, the scheduler job that schedules this DAG (store/leases.py); NULL while
    # none has claimed it. Not a foreign key: job rows are deleted by retention, and a DAG
    # whose owner is gone or no longer running is claimed like an unowned one.
    Column("scheduler_job_id", Integer, nullable=True),
    Index("ix_dags_scheduler_job_id", "scheduler_job_id"),
)

dag_versions = Table(
    "dag_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(250), ForeignKey("dags.dag_id", ondelete="CASCADE"), nullable=False),
    Column("version_hash", String(64), nullable=False),
    Column("structure", JsonType, nullable=False),
    Column("source", Text, nullable=True),
    # SHA-256 of the DAG file's bytes as parsed: a worker whose file has this digest imports
    # the file, any other reads `source` (NULL for versions stored without their text).
    Column("source_sha256", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("dag_id", "version_hash"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(250), ForeignKey("dags.dag_id", ondelete="CASCADE"), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("state", String(20), nullable=False),
    Column("run_type", String(20), nullable=False),
    Column("logical_date", UtcDateTime, nullable=True),
    Column("data_interval_start", UtcDateTime, nullable=True),
    Column("data_interval_end", UtcDateTime, nullable=True),
    Column("conf", JsonType, nullable=False, default=dict),
    Column("queued_at", UtcDateTime, nullable=False),
    Column("start_date", UtcDateTime, nullable=True),
    Column("end_date", UtcDateTime, nullable=True),
    Column("version_id", Integer, ForeignKey("dag_versions.id"), nullable=False),
    Column("external_trigger", Boolean, nullable=False, default=True),
    Column("note", Text, nullable=True),
    Column("state_reason", Text, nullable=True),
    Column("triggered_by", String(50), nullable=True),
    Column("idempotency_key", String(250), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("dag_id", "run_id"),
    UniqueConstraint("dag_id", "idempotency_key"),
    # The scheduler finds queued and running runs per DAG; listings page by DAG and date.
    Index("ix_runs_state_dag_id", "state", "dag_id", "id"),
    Index("ix_runs_dag_id_logical_date", "dag_id", "logical_date"),
    Index("ix_runs_dag_id_id", "dag_id", "id"),
    Index("ix_runs_logical_date", "logical_date"),
    # The web UI's change watcher reads the runs changed in the last seconds, several times a
    # second while a page is open (store/changes.py).
    Index("ix_runs_updated_at", "updated_at"),
)

task_instances = Table(
    "task_instances",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", String(250), primary_key=True),
    # -1 for a task that is not mapped (or a mapped one not expanded yet), 0..N-1 once expanded.
    Column("map_index", Integer, primary_key=True, default=-1, server_default="-1"),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("state", String(20), nullable=False),
    Column("try_number", Integer, nullable=False, default=0),
    Column("max_tries", Integer, nullable=False, default=0),
    Column("infra_failures", Integer, nullable=False, default=0),
    Column("operator", String(100), nullable=False),
    Column("pool", String(250), nullable=False, default="default_pool"),
    # What a queued or running try holds of its pool (the pools' counts sum it).
    Column("pool_slots", Integer, nullable=False, default=1, server_default="1"),
    Column("queue", String(250), nullable=False, default="default"),
    Column("priority_weight", Integer, nullable=False, default=1),
    Column("queued_at", UtcDateTime, nullable=True),
    Column("start_date", UtcDateTime, nullable=True),
    Column("end_date", UtcDateTime, nullable=True),
    Column("next_retry_at", UtcDateTime, nullable=True),
    Column("hostname", String(250), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("state_reason", Text, nullable=True),
    # The scheduler job that queued the current try; if that job dies, the try is lost.
    Column("owner_job_id", Integer, nullable=True),
    # The Celery worker (its job) that claimed the current try; a try it runs is lost with it.
    Column("worker_job_id", Integer, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    # A try waiting without a process (up_for_reschedule, deferred): when the scheduler wakes
    # it and to which state, the wait it reported (JSON: core.records.Wait), and whether its
    # next queueing continues that same try (Airflow keeps try_number across reschedules).
    Column("wake_at", UtcDateTime, nullable=True),
    Column("wake_target", String(20), nullable=True),
    Column("wait", Text, nullable=True),
    Column("resumes_try", Boolean, nullable=False, default=False, server_default=false()),
    # A reschedule-mode sensor's first poke in this set of tries (the first try that waited's
    # start): a retry counts the sensor's timeout from it, as Airflow; a clear forgets it.
    Column("sensor_started_at", UtcDateTime, nullable=True),
    # Scans by state stay proportional to what is in that state (scheduled, running, retrying).
    Index("ix_task_instances_state_dag_id", "state", "dag_id"),
)

task_tries = Table(
    "task_tries",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", String(250), primary_key=True),
    Column("map_index", Integer, primary_key=True, default=-1, server_default="-1"),
    Column("try_number", Integer, primary_key=True),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("state", String(20), nullable=False),
    Column("queued_at", UtcDateTime, nullable=True),
    Column("start_date", UtcDateTime, nullable=True),
    Column("end_date", UtcDateTime, nullable=True),
    Column("hostname", String(250), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("exit_reason", String(30), nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
)

xcoms = Table(
    "xcoms",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", String(250), primary_key=True),
    Column("map_index", Integer, primary_key=True, default=-1, server_default="-1"),
    Column("key", String(512), primary_key=True),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("value", Text, nullable=False),  # JSON text, decoded only by the runner and the API
    Column("timestamp", UtcDateTime, nullable=False),
)

# How many items a task's return value holds, recorded when mapped tasks expand over it
# (Airflow's task_map): the scheduler learns a mapped task's length without decoding the XCom.
task_maps = Table(
    "task_maps",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", String(250), primary_key=True),
    Column("map_index", Integer, primary_key=True, default=-1, server_default="-1"),
    Column("length", Integer, nullable=False),
)

import_errors = Table(
    "import_errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("filename", Text, nullable=False, unique=True),
    Column("stacktrace", Text, nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
)

# One row per scheduler process: its heartbeat is what health checks and lost-try recovery read.
scheduler_jobs = Table(
    "scheduler_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_type", String(30), nullable=False, default="scheduler"),
    Column("hostname", String(250), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("state", String(20), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("latest_heartbeat", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    # A Celery worker's queues, comma-separated (named when nobody takes a try's queue).
    Column("queues", Text, nullable=True),
    Index("ix_scheduler_jobs_state_latest_heartbeat", "state", "latest_heartbeat"),
)

# People who sign in to the API and UI. Roles are names (built-in ones for now); the password
# is an argon2id hash and never leaves store except through users.password_hash_of.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(256), nullable=False, unique=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("first_name", String(256), nullable=False, default=""),
    Column("last_name", String(256), nullable=False, default=""),
    Column("password_hash", String(256), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("roles", JsonType, nullable=False, default=list),
    Column("created_on", UtcDateTime, nullable=False),
    Column("changed_on", UtcDateTime, nullable=False),
    Column("last_login", UtcDateTime, nullable=True),
    Column("login_count", Integer, nullable=False, default=0),
    Column("failed_login_count", Integer, nullable=False, default=0),
)

# API tokens: only a SHA-256 of each token is kept (tokens are 256 random bits, so a fast hash
# is enough). `kind` is `api` for named long-lived tokens made with `tokens create`, `session`
# for the short-lived ones POST /auth/token hands out.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("kind", String(20), nullable=False, default="api"),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Index("ix_api_tokens_user_id", "user_id"),
)

# Custom roles. The built-in ones (Admin, Op, User, Viewer, Public) live in code; a custom
# role holds Airflow-style permission pairs, `[["can_read", "DAG:etl"], ...]`.
roles = Table(
    "roles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("permissions", JsonType, nullable=False, default=list),
    Column("created_on", UtcDateTime, nullable=False),
    Column("changed_on", UtcDateTime, nullable=False),
)

# Callbacks the scheduler asked an executor to run (a lost try's failure callbacks, a DAG's
# callbacks at a run's end), written with the state change that called for them and deleted
# once run, so a scheduler restart in between runs them still.
callback_requests = Table(
    "callback_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("task_id", String(250), nullable=False, default=""),  # "" for a DAG's callbacks
    Column("try_number", Integer, nullable=False, default=0),
    Column("map_index", Integer, nullable=False, default=-1, server_default="-1"),
    Column("error", Text, nullable=True),
    Column("reason", String(50), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # The Celery worker that claimed the request (runs it); NULL: nobody yet.
    Column("worker_job_id", Integer, nullable=True),
)

# The outbox of tries' outcomes (TaskFinished.to_json in `payload`): written by a worker host
# while no scheduler is attached to hear them, so a finished try is never lost with its
# scheduler; the next pass applies each row and deletes it in the same transaction. One row
# per try: a retried insert (its commit's answer lost) writes nothing twice.
try_outcomes = Table(
    "try_outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("dag_id", String(250), nullable=False),
    Column("task_id", String(250), nullable=False),
    Column("map_index", Integer, nullable=False, default=-1, server_default="-1"),
    Column("try_number", Integer, nullable=False),
    Column("worker_job_id", Integer, nullable=True),  # the host that wrote it
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("run_pk", "task_id", "map_index", "try_number"),
    Index("ix_try_outcomes_dag_id_id", "dag_id", "id"),
)

# Web UI sign-ins: only a SHA-256 of each session id is kept (the id itself is 256 random bits
# and lives in the browser's cookie). A session ends when unused until `expires_at`, when its
# user signs out, or when the user is disabled or gets a new password (rows deleted).
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_web_sessions_user_id", "user_id"),
    Index("ix_web_sessions_expires_at", "expires_at"),
)

# Airflow's Variables: `val` is Fernet-encrypted text when is_encrypted (always, when written
# by Slipstream; a plain value is read as it is).
variables = Table(
    "variables",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(250), nullable=False, unique=True),
    Column("val", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("is_encrypted", Boolean, nullable=False, default=True),
)

# Airflow's Connections: password and extra are Fernet-encrypted text when is_encrypted.
connections = Table(
    "connections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conn_id", String(250), nullable=False, unique=True),
    Column("conn_type", String(500), nullable=False),
    Column("description", Text, nullable=True),
    Column("host", String(500), nullable=True),
    Column("schema", String(500), nullable=True),
    Column("login", Text, nullable=True),
    Column("password", Text, nullable=True),
    Column("port", Integer, nullable=True),
    Column("extra", Text, nullable=True),
    Column("is_encrypted", Boolean, nullable=False, default=True),
)

# Pools (migration 0009): named slots queued and running tries hold. default_pool always exists.
pools = Table(
    "pools",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pool", String(256), nullable=False, unique=True),  # Airflow's column name
    Column("slots", Integer, nullable=False, default=0),
    Column("description", Text, nullable=True),
    Column("include_deferred", Boolean, nullable=False, default=False),
)

# The audit (event) log, Airflow's `log`: one row per action, written in the action's own
# transaction. `extra` is JSON text and never holds a secret.
log = Table(
    "log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dttm", UtcDateTime, nullable=False),
    Column("dag_id", String(250), nullable=True),
    Column("task_id", String(250), nullable=True),
    Column("map_index", Integer, nullable=True),
    Column("event", String(60), nullable=False),
    Column("execution_date", UtcDateTime, nullable=True),
    Column("run_id", String(250), nullable=True),
    Column("owner", String(500), nullable=True),
    Column("owner_display_name", String(500), nullable=True),
    Column("extra", Text, nullable=True),
    Column("try_number", Integer, nullable=True),
    Index("ix_log_dttm", "dttm"),
    Index("ix_log_dag_id", "dag_id"),
    Index("ix_log_event", "event"),
)

# Assets (Airflow's datasets): one row per URI, kept when no DAG names it any more (its events
# are history). Which DAGs are scheduled on each and which tasks update it are rewritten each
# time a DAG is parsed; events are written by the scheduler when a task with outlets succeeds
# (or by a person through the API), and queued for each consuming DAG until a run takes them.
assets = Table(
    "assets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uri", String(1500), nullable=False, unique=True),
    Column("name", String(1500), nullable=False),
    Column("asset_group", String(1500), nullable=False),
    Column("extra", JsonType, nullable=False, default=dict),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

asset_consumers = Table(
    "asset_consumers",
    metadata,
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("dag_id", String(250), ForeignKey("dags.dag_id", ondelete="CASCADE"), primary_key=True),
    Index("ix_asset_consumers_dag_id", "dag_id"),
)

asset_producers = Table(
    "asset_producers",
    metadata,
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("dag_id", String(250), ForeignKey("dags.dag_id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", String(250), primary_key=True),
    Index("ix_asset_producers_dag_id", "dag_id"),
)

asset_events = Table(
    "asset_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("extra", JsonType, nullable=False, default=dict),
    Column("source_dag_id", String(250), nullable=True),
    Column("source_task_id", String(250), nullable=True),
    Column("source_run_id", String(250), nullable=True),
    Column("source_map_index", Integer, nullable=False, default=-1),
    Column("timestamp", UtcDateTime, nullable=False),
    Index("ix_asset_events_asset_id_id", "asset_id", "id"),
)

# Airflow's dataset_dag_run_queue: an asset updated since the consuming DAG's last
# asset-triggered run. The scheduler reads it only after an event (or a hint of one).
asset_queue = Table(
    "asset_queue",
    metadata,
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("dag_id", String(250), ForeignKey("dags.dag_id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# The events an asset-triggered run consumed (its triggering_asset_events).
run_asset_events = Table(
    "run_asset_events",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "event_id", Integer, ForeignKey("asset_events.id", ondelete="CASCADE"), primary_key=True
    ),
    Index("ix_run_asset_events_event_id", "event_id"),
)

# Runs a task started (TriggerDagRunOperator): which try started each, and how many such hops
# lie behind it, so a chain of DAGs triggering one another is stopped at a bound.
run_triggers = Table(
    "run_triggers",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("source_dag_id", String(250), nullable=False),
    Column("source_run_id", String(250), nullable=False),
    Column("source_task_id", String(250), nullable=False),
    Column("depth", Integer, nullable=False),
)
