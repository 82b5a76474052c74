"""Settings: one frozen, typed value built from SLIPSTREAM_* environment variables.

There is no module-level instance: bootstrap builds Settings once and passes it down, so a
component never reads configuration behind anyone's back and tests can build their own.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from slipstream.errors import ConfigError

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(name, f"expected a boolean (true/false), got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default, 1)
    if value > 65535:
        raise ConfigError(name, f"must be a TCP port (1 to 65535), got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"expected a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


# Airflow's [webserver] session_lifetime_minutes default: 30 days without a visit.
WEB_SESSION_LIFETIME_SECONDS = 30 * 24 * 3600.0
# A key shorter than this is more likely a mistake (an unset variable's default) than a secret.
MIN_WEB_SECRET_KEY_LENGTH = 16


def _web_secret_key(env: Mapping[str, str]) -> str | None:
    """SLIPSTREAM_WEB_SECRET_KEY, or the contents of the file SLIPSTREAM_WEB_SECRET_KEY_FILE
    names (so the key need not be in any process's environment), or None."""
    key = env.get("SLIPSTREAM_WEB_SECRET_KEY") or None
    name = "SLIPSTREAM_WEB_SECRET_KEY"
    key_file = env.get("SLIPSTREAM_WEB_SECRET_KEY_FILE")
    if key_file:
        name = "SLIPSTREAM_WEB_SECRET_KEY_FILE"
        if key is not None:
            raise ConfigError(
                name, "give SLIPSTREAM_WEB_SECRET_KEY or SLIPSTREAM_WEB_SECRET_KEY_FILE, not both"
            )
        try:
            key = Path(key_file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(name, f"cannot read {key_file}: {exc.strerror}") from None
    if key is not None and len(key) < MIN_WEB_SECRET_KEY_LENGTH:
        raise ConfigError(
            name, f"the key must be at least {MIN_WEB_SECRET_KEY_LENGTH} characters long"
        )
    return key


def _fernet_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """SLIPSTREAM_FERNET_KEY (or the file SLIPSTREAM_FERNET_KEY_FILE names): comma-separated
    Fernet keys, the first encrypting and all decrypting (how a key is rotated). A key may also
    be given as 64 hex digits (the form of the key file made in $SLIPSTREAM_HOME)."""
    text = env.get("SLIPSTREAM_FERNET_KEY") or None
    name = "SLIPSTREAM_FERNET_KEY"
    key_file = env.get("SLIPSTREAM_FERNET_KEY_FILE")
    if key_file:
        name = "SLIPSTREAM_FERNET_KEY_FILE"
        if text is not None:
            raise ConfigError(
                name, "give SLIPSTREAM_FERNET_KEY or SLIPSTREAM_FERNET_KEY_FILE, not both"
            )
        try:
            text = Path(key_file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(name, f"cannot read {key_file}: {exc.strerror}") from None
    if text is None:
        return ()
    keys = tuple(fernet_key(part.strip(), name) for part in text.split(",") if part.strip())
    if not keys:
        raise ConfigError(name, "no key given")
    return keys


def fernet_key(text: str, setting: str) -> str:
    """A Fernet key (url-safe base64 of 32 bytes) from its own form or 64 hex digits."""
    if len(text) == 64:
        try:
            return base64.urlsafe_b64encode(bytes.fromhex(text)).decode("ascii")
        except ValueError:
            pass
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        # Never echo the value: it is a secret, however mistyped.
        raise ConfigError(
            setting, "not a Fernet key: expected url-safe base64 of 32 bytes, or 64 hex digits"
        )
    return text


_TEST_CONNECTION = {"enabled": True, "disabled": False, "hidden": False}


def _test_connection(env: Mapping[str, str]) -> bool:
    raw = (env.get("SLIPSTREAM_TEST_CONNECTION") or "Disabled").strip()
    if raw.lower() not in _TEST_CONNECTION:
        raise ConfigError(
            "SLIPSTREAM_TEST_CONNECTION", f"expected Enabled, Disabled or Hidden, got {raw!r}"
        )
    return _TEST_CONNECTION[raw.lower()]


LOG_FORMATS = ("text", "json")


def _log_format(env: Mapping[str, str]) -> str:
    raw = (env.get("SLIPSTREAM_LOG_FORMAT") or "text").strip().lower()
    if raw not in LOG_FORMATS:
        raise ConfigError("SLIPSTREAM_LOG_FORMAT", f"expected text or json, got {raw!r}")
    return raw


# A century: more is keeping everything, which leaving the setting unset says.
MAX_RETENTION_DAYS = 36500


EXECUTORS = ("local", "celery")


@dataclass(frozen=True, slots=True)
class CelerySettings:
    """The Celery executor's: where its broker is, how long a taken message may stay
    unacknowledged before the broker gives it to another worker, how long an unclaimed try
    waits before its message is published again (a broker that lost it: duplicates die at the
    claim), and how long before a try nobody takes fails (Airflow's task_queued_timeout)."""

    broker_url: str
    visibility_timeout: float = 300.0
    republish_after: float = 30.0
    queued_timeout: float = 600.0


def _executor(env: Mapping[str, str]) -> tuple[str, CelerySettings | None]:
    """SLIPSTREAM_EXECUTOR (local or celery) and, for celery, its settings; a result backend is
    refused by name, since outcomes go to the database and one would be set up for nothing."""
    name = (env.get("SLIPSTREAM_EXECUTOR") or "local").strip().lower()
    if name not in EXECUTORS:
        raise ConfigError(
            "SLIPSTREAM_EXECUTOR", f"expected one of {', '.join(EXECUTORS)}, got {name!r}"
        )
    if (env.get("SLIPSTREAM_CELERY_RESULT_BACKEND") or "").strip():
        raise ConfigError(
            "SLIPSTREAM_CELERY_RESULT_BACKEND",
            "Slipstream's Celery executor uses no result backend: each try's outcome is written"
            " to the metadata database by the worker that ran it; unset it",
        )
    broker = (env.get("SLIPSTREAM_CELERY_BROKER_URL") or "").strip()
    if name != "celery":
        return name, None
    if not broker:
        raise ConfigError(
            "SLIPSTREAM_CELERY_BROKER_URL",
            "SLIPSTREAM_EXECUTOR=celery needs a broker, e.g. redis://127.0.0.1:6379/0 or"
            " amqp://guest:guest@127.0.0.1:5672//",
        )
    if not broker.startswith(("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")):
        raise ConfigError(
            "SLIPSTREAM_CELERY_BROKER_URL",
            "expected a redis:// or amqp:// URL (Redis or RabbitMQ)",
        )
    timeout = _float(env, "SLIPSTREAM_CELERY_VISIBILITY_TIMEOUT_SECONDS", 300.0, 10.0)
    republish = _float(env, "SLIPSTREAM_CELERY_REPUBLISH_SECONDS", 30.0, 1.0)
    queued = _float(env, "SLIPSTREAM_TASK_QUEUED_TIMEOUT_SECONDS", 600.0, 1.0)
    return name, CelerySettings(broker, timeout, republish, queued)


def _retention_days(env: Mapping[str, str]) -> float | None:
    """SLIPSTREAM_RETENTION_DAYS: a number of days above 0 (fractions allowed: 0.5 is 12
    hours), or unset for no retention."""
    raw = (env.get("SLIPSTREAM_RETENTION_DAYS") or "").strip()
    if not raw:
        return None
    try:
        days = float(raw)
    except ValueError:
        raise ConfigError(
            "SLIPSTREAM_RETENTION_DAYS", f"expected a number of days, got {raw!r}"
        ) from None
    if not 0 < days <= MAX_RETENTION_DAYS:
        raise ConfigError(
            "SLIPSTREAM_RETENTION_DAYS",
            f"must be above 0 and at most {MAX_RETENTION_DAYS} days (unset it to keep"
            f" everything), got {raw!r}",
        )
    return days


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """How tries send e-mail (email_on_failure / email_on_retry); None in Settings when
    SLIPSTREAM_SMTP_HOST is not set. The password never needs to be in a process argument:
    it comes from SLIPSTREAM_SMTP_PASSWORD or the file SLIPSTREAM_SMTP_PASSWORD_FILE names,
    and reaches workers over their socket."""

    host: str
    port: int = 25
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    ssl: bool = False
    mail_from: str = "slipstream@localhost"
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings | None:
        host = (env.get("SLIPSTREAM_SMTP_HOST") or "").strip()
        if not host:
            return None
        password = env.get("SLIPSTREAM_SMTP_PASSWORD") or None
        password_file = env.get("SLIPSTREAM_SMTP_PASSWORD_FILE")
        if password_file:
            if password is not None:
                raise ConfigError(
                    "SLIPSTREAM_SMTP_PASSWORD_FILE",
                    "give SLIPSTREAM_SMTP_PASSWORD or SLIPSTREAM_SMTP_PASSWORD_FILE, not both",
                )
            try:
                password = Path(password_file).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    "SLIPSTREAM_SMTP_PASSWORD_FILE", f"cannot read {password_file}: {exc.strerror}"
                ) from None
        ssl = _bool(env, "SLIPSTREAM_SMTP_SSL", False)
        starttls = _bool(env, "SLIPSTREAM_SMTP_STARTTLS", False)
        if ssl and starttls:
            raise ConfigError(
                "SLIPSTREAM_SMTP_SSL", "SSL and STARTTLS are exclusive; set only one of them"
            )
        return cls(
            host=host,
            port=_int(env, "SLIPSTREAM_SMTP_PORT", 465 if ssl else 25, 1),
            user=env.get("SLIPSTREAM_SMTP_USER") or None,
            password=password,
            starttls=starttls,
            ssl=ssl,
            mail_from=env.get("SLIPSTREAM_SMTP_MAIL_FROM") or "slipstream@localhost",
            timeout=_float(env, "SLIPSTREAM_SMTP_TIMEOUT", 30.0, 0.1),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a Slipstream process may be configured with.

    home:                 SLIPSTREAM_HOME, default ~/slipstream
    dags_folder:          SLIPSTREAM_DAGS_FOLDER, default $home/dags
    database_url:         SLIPSTREAM_DATABASE_URL, default sqlite:///$home/slipstream.db
    load_examples:        SLIPSTREAM_LOAD_EXAMPLES, default true
    dags_paused_at_creation: SLIPSTREAM_DAGS_ARE_PAUSED_AT_CREATION, default false
    workers:              SLIPSTREAM_WORKERS, warm worker processes of the local executor (CPUs)
    parallelism:          SLIPSTREAM_PARALLELISM, tries running at once across all workers (32)
    heartbeat_seconds:    how often a scheduler proves it is alive
    lost_after_seconds:   a heartbeat older than this means the owner is gone (<= 30 s)
    infra_retries:        extra tries granted when infrastructure (not task code) lost a try
    dag_parse_interval:   SLIPSTREAM_DAG_PARSE_INTERVAL, seconds between scans of the DAG folders
                          for changes (1); where inotify watches them, a change is seen at
                          once and the scan is only a safety net, every 30 s at the least
    smtp:                 SLIPSTREAM_SMTP_HOST, _PORT (25; 465 with SSL), _USER, _PASSWORD or
                          _PASSWORD_FILE, _STARTTLS, _SSL, _MAIL_FROM, _TIMEOUT (30 s): where
                          email_on_failure / email_on_retry send; unset, tries log that e-mail
                          is not configured
    dag_import_timeout:   SLIPSTREAM_DAG_IMPORT_TIMEOUT, seconds a DAG file may take to import (30)
    dag_parse_parallelism: SLIPSTREAM_DAG_PARSE_PARALLELISM, DAG files imported at once (2); a
                          file importing for over a second stops counting, up to 4x as many
    dag_import_memory_mb: SLIPSTREAM_DAG_IMPORT_MEMORY_MB, memory one DAG file's import may use
                          (2048; 0 for no limit)
    dag_import_output_mb: SLIPSTREAM_DAG_IMPORT_OUTPUT_MB, what one import may print (16)
    standalone_dag_processor: SLIPSTREAM_STANDALONE_DAG_PROCESSOR, the scheduler leaves parsing
                          to a separate `slipstream dag-processor` (false)
    api_max_body_bytes:   SLIPSTREAM_API_MAX_BODY_BYTES, larger request bodies get 413 (1 MiB)
    api_max_page_limit:   SLIPSTREAM_API_MAXIMUM_PAGE_LIMIT, the most items one page holds (100)
    api_token_ttl:        SLIPSTREAM_API_TOKEN_TTL_SECONDS, life of a POST /auth/token token (1 h)
    api_max_wait_seconds: SLIPSTREAM_API_MAX_WAIT_SECONDS, the longest `?wait=` on a run (300 s):
                          long enough for most short DAGs, short enough that a proxy's idle
                          timeout is not what ends the request
    default_pool_slots:   SLIPSTREAM_DEFAULT_POOL_SLOTS: when set, each scheduler makes the
                          `default_pool` row this size as it starts; unset (None), the row
                          alone decides (128 when created; `slipstream pools set`)
    max_map_length:       SLIPSTREAM_MAX_MAP_LENGTH, the most instances a mapped task expands
                          to (Airflow's [core] max_map_length, 1024)
    web_secret_key:       SLIPSTREAM_WEB_SECRET_KEY, or the file SLIPSTREAM_WEB_SECRET_KEY_FILE
                          names: the key the web UI signs its CSRF tokens with; unset, a key
                          made once in $home/.web-secret-key (mode 0600) is used
    web_session_lifetime: SLIPSTREAM_WEB_SESSION_LIFETIME_SECONDS, how long a web UI sign-in
                          lasts unused (30 days, Airflow's session_lifetime_minutes)
    callback_timeout:     SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS, the longest one outcome's callbacks
                          (and e-mail) may take, in the try's process or in a callback request's,
                          before they are stopped (300 s); execution_timeout does not cover them
    fernet_keys:          SLIPSTREAM_FERNET_KEY, or the file SLIPSTREAM_FERNET_KEY_FILE names:
                          comma-separated keys encrypting Variables and Connections at rest, the
                          first encrypting, all decrypting; unset, a key made once in
                          $home/.fernet-key (mode 0600) is used
    test_connection:      SLIPSTREAM_TEST_CONNECTION, Enabled lets `connections test` and
                          POST /connections/test run (Airflow's [core] test_connection;
                          Disabled by default, Hidden counts as Disabled)
    metrics_public:       SLIPSTREAM_METRICS_PUBLIC, the API server's /metrics answers without
                          credentials (false: any signed-in user, Basic or Bearer)
    log_format:           SLIPSTREAM_LOG_FORMAT, text (default) or json: the servers' own logs
                          as one JSON object per line (not task logs)
    worker_autostart:     SLIPSTREAM_WORKER_AUTOSTART, a scheduler that finds no worker host
                          (`slipstream worker`) listening on this home starts one beside it
                          (true); false: it waits, running nothing, until one is started
    worker_idle_exit_seconds: SLIPSTREAM_WORKER_IDLE_EXIT_SECONDS, how long an autostarted
                          worker host whose scheduler vanished (killed) waits for the next
                          one once it holds no try, before it exits (60)
    retention_days:       SLIPSTREAM_RETENTION_DAYS, days of runs to keep: the scheduler prunes
                          older finished runs with their task instances, tries, XComs and log
                          files, in small batches between its passes (`db clean`'s rules: each
                          DAG's latest non-manual run stays). Unset (None): keep everything
    worker_log_server_port: SLIPSTREAM_WORKER_LOG_SERVER_PORT, where each worker serves its
                          tries' logs to the API server (8793, Airflow's worker_log_server_port);
                          requests are signed with a key derived from web_secret_key, so every
                          machine of an install must share SLIPSTREAM_WEB_SECRET_KEY
    executor:             SLIPSTREAM_EXECUTOR, local (default: tries run on this machine's worker)
                          or celery (tries go through a broker to `slipstream celery worker`s)
    celery:               with celery: SLIPSTREAM_CELERY_BROKER_URL (Redis or RabbitMQ; required)
                          and SLIPSTREAM_CELERY_VISIBILITY_TIMEOUT_SECONDS (300: a message a
                          dead worker took goes to another after this long; running it twice is
                          harmless, the claim lets one copy run),
                          SLIPSTREAM_CELERY_REPUBLISH_SECONDS (30: a try nobody claimed is
                          published again, for a broker that lost its messages) and
                          SLIPSTREAM_TASK_QUEUED_TIMEOUT_SECONDS (600, Airflow's
                          task_queued_timeout: a try no worker took fails, naming its queue).
                          There is no result backend: SLIPSTREAM_CELERY_RESULT_BACKEND is
                          refused. Celery needs PostgreSQL: workers on other machines cannot
                          share a SQLite file (the scheduler and workers refuse it by name)
    """

    home: Path
    dags_folder: Path
    database_url: str
    log_folder: Path
    load_examples: bool = True
    dags_paused_at_creation: bool = False
    workers: int = 2
    parallelism: int = 32
    heartbeat_seconds: float = 5.0
    lost_after_seconds: float = 30.0
    infra_retries: int = 2
    dag_parse_interval: float = 1.0
    dag_import_timeout: float = 30.0
    dag_parse_parallelism: int = 2
    dag_import_memory_mb: int = 2048
    dag_import_output_mb: int = 16
    standalone_dag_processor: bool = False
    api_max_body_bytes: int = 1024 * 1024
    api_max_page_limit: int = 100
    api_token_ttl: float = 3600.0
    api_max_wait_seconds: float = 300.0
    smtp: SmtpSettings | None = None
    default_pool_slots: int | None = None
    max_map_length: int = 1024
    web_secret_key: str | None = field(default=None, repr=False)
    web_session_lifetime: float = WEB_SESSION_LIFETIME_SECONDS
    callback_timeout: float = 300.0
    fernet_keys: tuple[str, ...] = field(default=(), repr=False)
    test_connection: bool = False
    metrics_public: bool = False
    log_format: str = "text"
    retention_days: float | None = None
    worker_log_server_port: int = 8793
    executor: str = "local"
    celery: CelerySettings | None = None
    worker_autostart: bool = True
    worker_idle_exit_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("SLIPSTREAM_HOME") or Path.home() / "slipstream").expanduser()
        dags = Path(env.get("SLIPSTREAM_DAGS_FOLDER") or home / "dags").expanduser()
        url = env.get("SLIPSTREAM_DATABASE_URL") or f"sqlite:///{home / 'slipstream.db'}"
        if "://" not in url:
            raise ConfigError("SLIPSTREAM_DATABASE_URL", f"not a database URL: {url!r}")
        heartbeat = _float(env, "SLIPSTREAM_HEARTBEAT_SECONDS", 5.0, 0.05)
        lost_after = _float(env, "SLIPSTREAM_LOST_AFTER_SECONDS", 30.0, 0.1)
        if lost_after <= heartbeat:
            raise ConfigError(
                "SLIPSTREAM_LOST_AFTER_SECONDS", "must be longer than SLIPSTREAM_HEARTBEAT_SECONDS"
            )
        executor, celery = _executor(env)
        return cls(
            home=home,
            dags_folder=dags,
            database_url=url,
            log_folder=Path(env.get("SLIPSTREAM_LOG_FOLDER") or home / "logs").expanduser(),
            load_examples=_bool(env, "SLIPSTREAM_LOAD_EXAMPLES", True),
            dags_paused_at_creation=_bool(env, "SLIPSTREAM_DAGS_ARE_PAUSED_AT_CREATION", False),
            workers=_int(env, "SLIPSTREAM_WORKERS", os.cpu_count() or 2, 1),
            parallelism=_int(env, "SLIPSTREAM_PARALLELISM", 32, 1),
            heartbeat_seconds=heartbeat,
            lost_after_seconds=lost_after,
            infra_retries=_int(env, "SLIPSTREAM_INFRA_RETRIES", 2, 0),
            dag_parse_interval=_float(env, "SLIPSTREAM_DAG_PARSE_INTERVAL", 1.0, 0.05),
            dag_import_timeout=_float(env, "SLIPSTREAM_DAG_IMPORT_TIMEOUT", 30.0, 0.1),
            dag_parse_parallelism=_int(env, "SLIPSTREAM_DAG_PARSE_PARALLELISM", 2, 1),
            dag_import_memory_mb=_int(env, "SLIPSTREAM_DAG_IMPORT_MEMORY_MB", 2048, 0),
            dag_import_output_mb=_int(env, "SLIPSTREAM_DAG_IMPORT_OUTPUT_MB", 16, 1),
            standalone_dag_processor=_bool(env, "SLIPSTREAM_STANDALONE_DAG_PROCESSOR", False),
            api_max_body_bytes=_int(env, "SLIPSTREAM_API_MAX_BODY_BYTES", 1024 * 1024, 1),
            api_max_page_limit=_int(env, "SLIPSTREAM_API_MAXIMUM_PAGE_LIMIT", 100, 1),
            api_token_ttl=_float(env, "SLIPSTREAM_API_TOKEN_TTL_SECONDS", 3600.0, 1.0),
            api_max_wait_seconds=_float(env, "SLIPSTREAM_API_MAX_WAIT_SECONDS", 300.0, 0.0),
            smtp=SmtpSettings.from_env(env),
            default_pool_slots=(
                _int(env, "SLIPSTREAM_DEFAULT_POOL_SLOTS", 128, 0)
                if (env.get("SLIPSTREAM_DEFAULT_POOL_SLOTS") or "").strip()
                else None
            ),
            max_map_length=_int(env, "SLIPSTREAM_MAX_MAP_LENGTH", 1024, 1),
            web_secret_key=_web_secret_key(env),
            web_session_lifetime=_float(
                env, "SLIPSTREAM_WEB_SESSION_LIFETIME_SECONDS", WEB_SESSION_LIFETIME_SECONDS, 60.0
            ),
            callback_timeout=_float(env, "SLIPSTREAM_CALLBACK_TIMEOUT_SECONDS", 300.0, 0.1),
            fernet_keys=_fernet_keys(env),
            test_connection=_test_connection(env),
            metrics_public=_bool(env, "SLIPSTREAM_METRICS_PUBLIC", False),
            log_format=_log_format(env),
            retention_days=_retention_days(env),
            worker_log_server_port=_port(env, "SLIPSTREAM_WORKER_LOG_SERVER_PORT", 8793),
            executor=executor,
            celery=celery,
            worker_autostart=_bool(env, "SLIPSTREAM_WORKER_AUTOSTART", True),
            worker_idle_exit_seconds=_float(env, "SLIPSTREAM_WORKER_IDLE_EXIT_SECONDS", 60.0, 0.0),
        )

    @property
    def wakeup_path(self) -> Path:
        """Where the scheduler listens for wake-ups."""
        return self._socket_path("scheduler.wake", "wake")

    @property
    def worker_socket_path(self) -> Path:
        """Where the worker host listens for its scheduler (a Unix stream socket, mode 0600)."""
        return self._socket_path("worker.sock", "worker")

    @property
    def worker_lock_path(self) -> Path:
        """The file the worker host holds an flock on (one host per home); it holds its pid."""
        return self.home / "worker.lock"

    @property
    def worker_log_path(self) -> Path:
        """Where an autostarted worker host's own output goes."""
        return self.log_folder / "worker" / "worker.out"

    def _socket_path(self, name: str, suffix: str) -> Path:
        """`name` in the home. Unix socket paths are capped near 108 bytes, so a deep
        SLIPSTREAM_HOME gets a short stand-in under /tmp named by its hash."""
        path = self.home / name
        if len(str(path)) < 100:
            return path
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"slipstream-{digest}.{suffix}"

    @property
    def web_secret_key_path(self) -> Path:
        """Where the web UI's key is made and kept when no key is given by setting."""
        return self.home / ".web-secret-key"

    @property
    def fernet_key_path(self) -> Path:
        """Where the Fernet key is made and kept when SLIPSTREAM_FERNET_KEY is not set."""
        return self.home / ".fernet-key"

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some fields replaced (for tests and for CLI flags)."""
        return replace(self, **changes)  # type: ignore[arg-type]
