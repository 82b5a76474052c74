"""The composition root: turns Settings into a database, services, an executor and a scheduler.

Nothing else builds long-lived objects, and nothing here decides anything: each function wires
one process shape (a CLI call, a scheduler, an in-process `dags test`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slipstream.auth.throttle import LoginThrottle
from slipstream.authoring.secrets import SecretsBackendFactory
from slipstream.clock import Clock, SystemClock
from slipstream.config import CelerySettings, Settings
from slipstream.core.records import Run, TaskFinished
from slipstream.core.states import TaskState
from slipstream.errors import (
    ConfigError,
    DagFileImportFailed,
    DagNotFound,
    DatabaseUnavailable,
)
from slipstream.executors.inline import InlineExecutor
from slipstream.executors.local import LocalExecutor
from slipstream.executors.log_server import LogServer, RemoteLog, log_server_key
from slipstream.keyfile import load_or_create_key
from slipstream.log_format import configure_logging, uvicorn_json_config
from slipstream.parsing.processor import DagFileProcessor
from slipstream.scheduler.loop import (
    HintSource,
    LoopSource,
    PassObserver,
    Stopper,
    run_forever,
    serve_sources,
)
from slipstream.scheduler.recovery import end_dead_workers
from slipstream.scheduler.tick import Scheduler
from slipstream.services.assets import AssetService
from slipstream.services.changes import ChangeService
from slipstream.services.connections import ConnectionService
from slipstream.services.dag_files import DagFileSync
from slipstream.services.dag_graph import DagGraphService
from slipstream.services.dag_overview import DagOverviewService
from slipstream.services.dag_processor import DagProcessor, processor_is_running
from slipstream.services.dag_source_reader_factory import DagSourceReaderFactory
from slipstream.services.dag_view import DagViewService
from slipstream.services.dags import DagService
from slipstream.services.database_checks import DatabaseChecks
from slipstream.services.db_cleanup import DbCleanupService
from slipstream.services.event_log import EventLogService
from slipstream.services.fresh_dags import FreshDags
from slipstream.services.health import HealthService
from slipstream.services.logs import LogService, RemoteLogs
from slipstream.services.monitoring import MonitoringService
from slipstream.services.pools import PoolService
from slipstream.services.retention import RetentionJob
from slipstream.services.roles import RoleService
from slipstream.services.run_changes import RunChangeService
from slipstream.services.runs import RunService
from slipstream.services.secrets_factory import NoStoredSecrets, StoredSecretsFactory
from slipstream.services.sign_in import SignInService
from slipstream.services.task_test import TaskTestService
from slipstream.services.tokens import TokenService
from slipstream.services.user_files import UserFileService
from slipstream.services.users import UserService
from slipstream.services.variables import VariableService
from slipstream.services.web_sessions import WebSessionService
from slipstream.services.xcom_reader_factory import XComReaderFactory
from slipstream.store import jobs as jobs_store
from slipstream.store import schema
from slipstream.store.db import Database
from slipstream.store.encryption import Cipher
from slipstream.store.notify import PgHintListener, hint_sender
from slipstream.store.plans import PlanCache
from slipstream.wakeup import Hint, HintSender, WakeupListener
from slipstream.worker.autostart import HostStarter
from slipstream.worker.celery_host import CeleryHost
from slipstream.worker.client import HostExecutor
from slipstream.worker.host import HostOptions, WorkerHost
from slipstream.worker.intake import Intake
from slipstream.worker.lock import HostLock

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from slipstream.executors.celery.executor import CeleryExecutor
    from slipstream.metrics.dag_parsing import DagParseMetrics
    from slipstream.metrics.server import MetricsServer

log = logging.getLogger(__name__)

EXAMPLES_FOLDER = Path(__file__).with_name("examples")


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    db: Database
    clock: Clock
    dags: DagService
    dag_overview: DagOverviewService
    dag_graph: DagGraphService
    dag_view: DagViewService
    runs: RunService
    run_changes: RunChangeService
    changes: ChangeService
    logs: LogService
    sign_ins: SignInService
    users: UserService
    tokens: TokenService
    roles: RoleService
    health: HealthService
    web_sessions: WebSessionService
    variables: VariableService
    connections: ConnectionService
    wakeup: HintSender
    pools: PoolService
    event_logs: EventLogService
    assets: AssetService
    cleanup: DbCleanupService

    def close(self) -> None:
        self.wakeup.close()
        self.db.dispose()


@dataclass(frozen=True, slots=True)
class MetricsAddress:
    """Where a scheduler or DAG processor serves its metrics (--metrics-host, --metrics-port)."""

    host: str
    port: int


def metrics_registry() -> CollectorRegistry:
    """A registry of this process's own, with its CPU, memory and file descriptors."""
    # prometheus_client loads here: commands that serve no metrics need not import it.
    from prometheus_client import CollectorRegistry, ProcessCollector

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


def metrics_server(registry: CollectorRegistry, address: MetricsAddress) -> MetricsServer:
    from slipstream.metrics.server import MetricsServer

    return MetricsServer(registry, address.host, address.port)


def open_database(settings: Settings, *, migrate: bool = False) -> Database:
    db = Database(settings.database_url)
    if migrate:
        schema.migrate(db)
    elif not schema.is_current(db):
        raise ConfigError(
            "database",
            f"the metadata database at {db.safe_url} is not migrated;"
            " run `slipstream db migrate` first",
        )
    return db


@dataclass(frozen=True, slots=True)
class Accounts:
    """The services about users, sharing one sign-in cache per process."""

    sign_ins: SignInService
    users: UserService
    roles: RoleService
    user_files: UserFileService


def account_services(db: Database, clock: Clock) -> Accounts:
    """Users and roles wired to each other: users may hold custom roles; a change to a user
    drops their cached sign-ins, and renaming or deleting a role drops everyone's."""
    sign_ins = SignInService(db, clock=clock)
    roles = RoleService(db, clock=clock)
    roles.when_members_change(sign_ins.forget_everyone)
    return Accounts(
        sign_ins=sign_ins,
        users=UserService(db, clock=clock, sign_ins=sign_ins, role_names=roles.names),
        roles=roles,
        user_files=UserFileService(db, clock=clock, sign_ins=sign_ins, role_names=roles.names),
    )


def wakeup_sender(settings: Settings, db: Database) -> HintSender:
    """How this process's changes reach schedulers: NOTIFY on PostgreSQL, else the datagram."""
    return hint_sender(db, settings.wakeup_path)


def build_services(settings: Settings, *, migrate: bool = False) -> Services:
    clock = SystemClock()
    db = open_database(settings, migrate=migrate)
    wakeup = wakeup_sender(settings, db)
    accounts = account_services(db, clock)
    plans = PlanCache()
    cipher = fernet_cipher(settings)
    runs = RunService(db, clock=clock, wakeup=wakeup, plans=plans)
    remote_logs = RemoteLogs(
        RemoteLog(
            functools.partial(_log_server_key, settings), port=settings.worker_log_server_port
        ),
        locate=runs.try_hostname,
        local_hostname=socket.gethostname(),
    )
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        dags=DagService(db, wakeup=wakeup, clock=clock),
        dag_overview=DagOverviewService(db),
        dag_graph=DagGraphService(db),
        dag_view=DagViewService(db),
        runs=runs,
        run_changes=RunChangeService(db, clock=clock, wakeup=wakeup, plans=plans),
        changes=ChangeService(db, clock=clock),
        logs=LogService(settings.log_folder, remote=remote_logs),
        sign_ins=accounts.sign_ins,
        users=accounts.users,
        tokens=TokenService(db, clock=clock, session_ttl=settings.api_token_ttl),
        roles=accounts.roles,
        health=HealthService(db, clock=clock, lost_after_seconds=settings.lost_after_seconds),
        web_sessions=WebSessionService(db, clock=clock, lifetime=settings.web_session_lifetime),
        variables=VariableService(db, cipher, clock=clock),
        connections=ConnectionService(
            db, cipher, test_enabled=settings.test_connection, clock=clock
        ),
        wakeup=wakeup,
        pools=PoolService(db, clock=clock, wakeup=wakeup),
        event_logs=EventLogService(db),
        assets=AssetService(db, clock=clock, wakeup=wakeup),
        cleanup=DbCleanupService(db, log_folder=settings.log_folder, clock=clock),
    )


@contextlib.contextmanager
def database_checks(settings: Settings) -> Iterator[DatabaseChecks]:
    """`db check` and `db check-migrations`: the database as it is, migrated or not."""
    db = Database(settings.database_url)
    try:
        yield DatabaseChecks(db, clock=SystemClock())
    finally:
        db.dispose()


# How long a CLI command waits for a running DAG processor to parse a DAG it names: a new file
# is seen within milliseconds (inotify) and parses in tens of them, unless many files queue.
CLI_DAG_WAIT_SECONDS = 10.0


def cli_fresh_dags(
    services: Services, on_wait: Callable[[str, float], None] = lambda dag_id, seconds: None
) -> FreshDags:
    """For CLI commands that may name a DAG file written a moment ago: they wait for a running
    DAG processor, or parse the folders (in forked children) when none runs. Never the API's."""
    settings, db, clock = services.settings, services.db, services.clock
    return FreshDags(
        sync=lambda: dag_file_sync(settings, db, clock, services.wakeup).sync_now(),
        processor_running=lambda: processor_is_running(
            db, clock=clock, lost_after_seconds=settings.lost_after_seconds
        ),
        wait_seconds=CLI_DAG_WAIT_SECONDS,
        on_wait=on_wait,
    )


def dag_folders(settings: Settings) -> list[Path]:
    folders = [settings.dags_folder]
    if settings.load_examples:
        folders.append(EXAMPLES_FOLDER)
    return folders


def dag_file_sync(
    settings: Settings,
    db: Database,
    clock: Clock,
    wakeup: HintSender | None,
    *,
    watch: bool = False,
    parse_metrics: DagParseMetrics | None = None,
) -> DagFileSync:
    """Parsing of the DAG folders into `db`; DAG files read the Variables and Connections of
    `settings`' database."""
    return dag_file_sync_reading(
        settings,
        db,
        clock,
        wakeup,
        secrets_factory(settings),
        watch=watch,
        parse_metrics=parse_metrics,
    )


def dag_file_sync_reading(
    settings: Settings,
    db: Database,
    clock: Clock,
    wakeup: HintSender | None,
    secrets: SecretsBackendFactory | None,
    *,
    watch: bool = False,
    parse_metrics: DagParseMetrics | None = None,
) -> DagFileSync:
    """Parsing of the DAG folders into `db`, DAG files reading the Variables and Connections
    `secrets` builds (None: the environment's alone)."""
    processor = DagFileProcessor(
        dag_folders(settings),
        interval=settings.dag_parse_interval,
        import_timeout=settings.dag_import_timeout,
        max_parallel=settings.dag_parse_parallelism,
        memory_bytes=settings.dag_import_memory_mb * 1024 * 1024,
        output_bytes=settings.dag_import_output_mb * 1024 * 1024,
        output_folder=settings.log_folder / "dag_processor",
        watch=watch,
        secrets=secrets,
    )
    return DagFileSync(
        db,
        processor,
        clock=clock,
        paused_at_creation=settings.dags_paused_at_creation,
        wakeup=wakeup,
        observer=parse_metrics,
    )


def dag_processor(
    settings: Settings,
    db: Database,
    clock: Clock,
    *,
    on_caught_up: Callable[[], None] | None = None,
    parse_metrics: DagParseMetrics | None = None,
) -> DagProcessor:
    """The long-running DAG processor: watches the folders, parses each file in its own child,
    and wakes the scheduler for each DAG that changed."""
    sync = dag_file_sync(
        settings,
        db,
        clock,
        hint_sender(db, settings.wakeup_path),
        watch=True,
        parse_metrics=parse_metrics,
    )
    return DagProcessor(
        db,
        sync,
        clock=clock,
        heartbeat_seconds=settings.heartbeat_seconds,
        lost_after_seconds=settings.lost_after_seconds,
        on_caught_up=on_caught_up,
    )


def run_dag_processor(
    settings: Settings,
    *,
    on_ready: Callable[[], None] | None = None,
    metrics_address: MetricsAddress | None = None,
) -> None:
    """Run the DAG processor alone in the foreground until SIGTERM or SIGINT (beside schedulers
    started with SLIPSTREAM_STANDALONE_DAG_PROCESSOR=true); with `metrics_address`, its parse
    times and errors are served there."""
    settings.dags_folder.mkdir(parents=True, exist_ok=True)
    db = open_database(settings)
    clock = SystemClock()
    parse_metrics: DagParseMetrics | None = None
    server: MetricsServer | None = None
    if metrics_address is not None:
        from slipstream.metrics.dag_parsing import DagParseMetrics

        registry = metrics_registry()
        parse_metrics = DagParseMetrics(registry)
        server = metrics_server(registry, metrics_address)
    processor = dag_processor(
        settings, db, clock, on_caught_up=on_ready, parse_metrics=parse_metrics
    )
    stopper = Stopper()
    try:
        if server is not None:
            server.start()
        stopper.install()
        processor.start()
        serve_sources([processor], clock=clock, stopper=stopper, probe=db.ping)
    finally:
        processor.stop()
        stopper.close()
        if server is not None:
            server.stop()
        db.dispose()


def run_task_test(
    settings: Settings,
    dag_id: str,
    task_id: str,
    *,
    map_index: int = -1,
    run_id: str | None = None,
    logical_date: datetime,
) -> tuple[TaskFinished, str]:
    """Run one task instance in this process, as `airflow tasks test` does: no dependencies
    checked, nothing recorded; returns how the try ended and its log."""
    db = open_database(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="slipstream-task-test-") as tmp:
            workload = TaskTestService(db, PlanCache()).workload(
                dag_id,
                task_id,
                map_index=map_index,
                run_id=run_id,
                logical_date=logical_date,
                log_folder=Path(tmp),
                max_map_length=settings.max_map_length,
            )
            executor = InlineExecutor(
                xcom_reader_factory=xcom_reader_factory(settings),
                callback_timeout=settings.callback_timeout,
                secrets=secrets_factory(settings),
                dag_folders=[str(folder) for folder in dag_folders(settings)],
            )
            executor.submit([workload])
            finished = [e for e in executor.events() if isinstance(e, TaskFinished)]
            log = Path(workload.log_path)
            return finished[-1], log.read_text(errors="replace") if log.exists() else ""
    finally:
        db.dispose()


def xcom_reader_factory(settings: Settings) -> XComReaderFactory:
    return XComReaderFactory(settings.database_url, str(settings.wakeup_path))


def fernet_cipher(settings: Settings) -> Cipher:
    """What encrypts stored Variables and Connections: SLIPSTREAM_FERNET_KEY's keys, else the
    key made once in the home folder (only when a value is first encrypted or decrypted)."""
    return Cipher(settings.fernet_keys, settings.fernet_key_path)


def secrets_factory(settings: Settings) -> StoredSecretsFactory:
    """The recipe tries and DAG file parses build their stored-secrets backend from."""
    return StoredSecretsFactory(
        settings.database_url, settings.fernet_keys, str(settings.fernet_key_path)
    )


def run_scheduler(
    settings: Settings,
    *,
    migrate: bool = False,
    on_ready: Callable[[Scheduler], None] | None = None,
    metrics_address: MetricsAddress | None = None,
) -> None:
    """Run the scheduler and DAG file parsing in the foreground until SIGTERM or SIGINT, tries
    running in this home's worker host; with `metrics_address`, its metrics (its executor's
    load and DAG parsing's too) are served there."""
    settings.dags_folder.mkdir(parents=True, exist_ok=True)
    observer: PassObserver | None = None
    parse_metrics: DagParseMetrics | None = None
    server: MetricsServer | None = None
    if metrics_address is not None:
        from slipstream.metrics.dag_parsing import DagParseMetrics
        from slipstream.metrics.scheduler import SchedulerMetrics

        registry = metrics_registry()
        observer = SchedulerMetrics(registry)
        parse_metrics = DagParseMetrics(registry)
        server = metrics_server(registry, metrics_address)
        # Before anything else starts: a port already taken is a clear error, nothing more.
        server.start()
    try:
        _run_scheduler(
            settings,
            migrate=migrate,
            on_ready=on_ready,
            observer=observer,
            parse_metrics=parse_metrics,
        )
    finally:
        if server is not None:
            server.stop()


def worker_pool(settings: Settings, clock: Clock) -> LocalExecutor:
    """The worker host's pool of warm workers, which run the tries."""
    return LocalExecutor(
        settings.workers,
        settings.parallelism,
        xcom_reader_factory=xcom_reader_factory(settings),
        clock=clock,
        dag_import_timeout=settings.dag_import_timeout,
        smtp=settings.smtp,
        callback_timeout=settings.callback_timeout,
        secrets=secrets_factory(settings),
        dag_source_reader=DagSourceReaderFactory(settings.database_url),
        dag_folders=[str(folder) for folder in dag_folders(settings)],
    )


def host_executor(settings: Settings, clock: Clock) -> HostExecutor:
    """The scheduler's executor: the worker host of this home, started beside the scheduler
    when none runs and SLIPSTREAM_WORKER_AUTOSTART allows it."""
    starter = HostStarter(settings.worker_log_path) if settings.worker_autostart else None
    return HostExecutor(settings.worker_socket_path, clock=clock, starter=starter)


def start_log_server(settings: Settings) -> LogServer | None:
    """This machine's worker log server (executors/log_server.py), for API servers elsewhere.
    A port already taken (another worker of this machine serves it) costs only remote reads of
    this worker's logs: said once, not fatal."""
    try:
        server = LogServer(
            settings.log_folder,
            _log_server_key(settings),
            host="0.0.0.0",
            port=settings.worker_log_server_port,
        )
    except OSError as exc:
        log.warning(
            "worker log server: cannot listen on port %d (%s); this worker's task logs can be"
            " read only on this machine (set SLIPSTREAM_WORKER_LOG_SERVER_PORT)",
            settings.worker_log_server_port,
            exc.strerror or exc,
        )
        return None
    server.start()
    return server


def _register_worker(
    settings: Settings, db: Database, clock: Clock, *, queues: tuple[str, ...] = ()
) -> int:
    """This process's job row as a worker, after marking lost the rows of workers gone."""
    with db.write() as conn:
        end_dead_workers(conn, lost_after_seconds=settings.lost_after_seconds, now=clock.now())
        return jobs_store.start_job(
            conn,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            now=clock.now(),
            job_type=jobs_store.WORKER,
            queues=queues,
        )


def run_worker(
    settings: Settings,
    *,
    autostarted: bool = False,
    on_ready: Callable[[WorkerHost], None] | None = None,
) -> None:
    """Run the worker host in the foreground until SIGTERM or SIGINT (or, autostarted, until
    it is no longer needed): the pool of warm workers running tries for whichever scheduler
    attaches at `settings.worker_socket_path`. Raises HostAlreadyRunning when another host
    holds this home."""
    lock = HostLock(settings.worker_lock_path)
    stopper = Stopper()
    db: Database | None = None
    pool: LocalExecutor | None = None
    host: WorkerHost | None = None
    logs: LogServer | None = None
    try:
        db = open_database(settings)
        clock = SystemClock()
        job_id = _register_worker(settings, db, clock)
        stopper.install()
        logs = start_log_server(settings)
        pool = worker_pool(settings, clock)
        pool.start()
        host = WorkerHost(
            db,
            pool,
            Intake(settings.worker_socket_path),
            stopper,
            job_id=job_id,
            clock=clock,
            options=HostOptions(
                heartbeat_seconds=settings.heartbeat_seconds,
                autostarted=autostarted,
                idle_exit_seconds=settings.worker_idle_exit_seconds,
            ),
        )
        if on_ready is not None:
            on_ready(host)
        host.serve()
    finally:
        if host is not None:
            host.close()
        elif pool is not None:
            pool.shutdown(graceful=False)
        if logs is not None:
            logs.stop()
        stopper.close()
        if db is not None:
            db.dispose()
        lock.release()


def _run_scheduler(
    settings: Settings,
    *,
    migrate: bool,
    on_ready: Callable[[Scheduler], None] | None,
    observer: PassObserver | None,
    parse_metrics: DagParseMetrics | None,
) -> None:
    if settings.executor == "celery":
        celery_on_postgresql(settings)
    db = open_database(settings, migrate=migrate)
    clock = SystemClock()
    executor: HostExecutor | CeleryExecutor
    if settings.executor == "celery":
        executor = celery_executor(settings, clock)
        executor.start()
    else:
        executor = host_executor(settings, clock)
    scheduler = Scheduler(db, executor, clock=clock, settings=settings)
    try:
        # First, before touching anything shared (the wake-up socket, the worker host): this
        # refuses to start while another scheduler is alive on this database. It then
        # attaches to the worker host (starting one if allowed) and adopts what it runs.
        scheduler.start()
    except BaseException:
        executor.shutdown()
        db.dispose()
        raise
    listener: WakeupListener | None = None
    hint_sources: list[HintSource] = []
    pg_listener: PgHintListener | None = None
    stopper = Stopper()
    looping = False
    processor: DagProcessor | None = None
    sources: list[LoopSource] = []
    if settings.retention_days is not None:
        cleanup = DbCleanupService(db, log_folder=settings.log_folder, clock=clock)
        sources.append(RetentionJob(cleanup, clock=clock, days=settings.retention_days))

    def ready() -> None:
        if on_ready is not None:
            on_ready(scheduler)

    try:
        listener = WakeupListener(settings.wakeup_path)
        if db.dialect == "postgresql":
            # Hints from processes on other machines (API servers, workers) come by NOTIFY.
            pg_listener = PgHintListener(settings.database_url)
            hint_sources.append(pg_listener)
        stopper.install()
        if settings.standalone_dag_processor:
            ready()
        else:
            # Parsing is served by the loop, beside scheduling: a slow DAG file delays only
            # itself, and "ready" comes once every other file has been parsed.
            processor = dag_processor(
                settings, db, clock, on_caught_up=ready, parse_metrics=parse_metrics
            )
            processor.start()
            sources.insert(0, processor)
        looping = True
        run_forever(
            scheduler,
            executor,
            clock=clock,
            listener=listener,
            sources=sources,
            stopper=stopper,
            observer=observer,
            hint_sources=hint_sources,
            probe=db.ping,
        )
    finally:
        if pg_listener is not None:
            pg_listener.close()
        if not looping:
            scheduler.stop()  # run_forever stops it on its way out; here it never ran
        if processor is not None:
            processor.stop()
        executor.shutdown()  # detaches: the host keeps running the tries
        if listener is not None:
            listener.close()
        stopper.close()
        db.dispose()


def celery_on_postgresql(settings: Settings) -> CelerySettings:
    """The Celery executor's settings, refused on SQLite by name: a worker on another machine
    cannot share a SQLite file, and workers write to the database at every try."""
    celery = celery_settings(settings)
    if not settings.database_url.startswith("postgresql"):
        raise ConfigError(
            "SLIPSTREAM_EXECUTOR",
            "SLIPSTREAM_EXECUTOR=celery needs PostgreSQL (SLIPSTREAM_DATABASE_URL is"
            f" {settings.database_url.split(':', 1)[0]}): Celery workers on other machines"
            " cannot share a SQLite file; use the local executor on SQLite",
        )
    return celery


def celery_executor(settings: Settings, clock: Clock) -> CeleryExecutor:
    """The scheduler's executor for SLIPSTREAM_EXECUTOR=celery (not started)."""
    from slipstream.executors.celery.app import make_app
    from slipstream.executors.celery.executor import CeleryExecutor

    celery = celery_on_postgresql(settings)
    return CeleryExecutor(
        make_app(celery),
        capacity=settings.parallelism,
        clock=clock,
        republish_after=celery.republish_after,
        queued_timeout=celery.queued_timeout,
    )


def run_celery_worker(
    settings: Settings,
    *,
    queues: Sequence[str],
    concurrency: int | None,
    hostname: str | None,
) -> int:
    """`slipstream celery worker`: a Celery worker (threads pool) whose tasks hand their tries
    to a worker host loop (the pool of warm workers, the claim, the outbox), and the log
    server; in the foreground until a warm (SIGTERM) or cold (SIGQUIT) shutdown. Returns the
    exit code."""
    from slipstream.executors.celery.worker import WorkerOptions, run_celery_worker, worker_app

    celery = celery_on_postgresql(settings)
    node = hostname or f"slipstream@{socket.gethostname()}"
    workers = concurrency or settings.parallelism or os.cpu_count() or 1
    names = tuple(dict.fromkeys(q.strip() for q in queues if q.strip())) or ("default",)
    db = open_database(settings)
    clock = SystemClock()
    machine = socket.gethostname()
    job_id = _register_worker(settings, db, clock, queues=names)
    pool: LocalExecutor | None = None
    host: CeleryHost | None = None
    thread: threading.Thread | None = None
    logs: LogServer | None = None
    try:
        pool = LocalExecutor(
            settings.workers,
            workers,
            xcom_reader_factory=xcom_reader_factory(settings),
            clock=clock,
            dag_import_timeout=settings.dag_import_timeout,
            smtp=settings.smtp,
            callback_timeout=settings.callback_timeout,
            secrets=secrets_factory(settings),
            dag_source_reader=DagSourceReaderFactory(settings.database_url),
            dag_folders=[str(folder) for folder in dag_folders(settings)],
        )
        pool.start()
        host = CeleryHost(
            db,
            pool,
            job_id=job_id,
            hostname=machine,
            clock=clock,
            heartbeat_seconds=settings.heartbeat_seconds,
            hints=wakeup_sender(settings, db),
        )
        thread = threading.Thread(target=host.serve, name="worker-host", daemon=True)
        thread.start()
        logs = start_log_server(settings)
        log.info(
            "celery worker %s (job %d): queues %s, concurrency %d",
            node,
            job_id,
            ",".join(names),
            workers,
        )
        app = worker_app(celery, host)
        return run_celery_worker(
            app, WorkerOptions(queues=names, concurrency=workers, hostname=node)
        )
    finally:
        if logs is not None:
            logs.stop()
        if host is not None:
            host.stop()
            if thread is not None:
                thread.join(30)
            host.close()
        elif pool is not None:
            pool.shutdown(graceful=False)
        if host is None:
            with contextlib.suppress(Exception), db.write() as conn:
                jobs_store.end_job(conn, job_id, clock.now())
        db.dispose()


def celery_settings(settings: Settings) -> CelerySettings:
    """The Celery executor's settings, or a ConfigError saying what to set or install."""
    if settings.executor != "celery" or settings.celery is None:
        raise ConfigError(
            "SLIPSTREAM_EXECUTOR",
            "this command serves the Celery executor: set SLIPSTREAM_EXECUTOR=celery and"
            " SLIPSTREAM_CELERY_BROKER_URL",
        )
    if importlib.util.find_spec("celery") is None:
        raise ConfigError(
            "SLIPSTREAM_EXECUTOR",
            "the Celery executor needs the celery extra: pip install 'slipstream[celery]'",
        )
    return settings.celery


def run_flower(settings: Settings, *, address: str, port: int) -> None:
    """Flower on the Celery executor's app, in the foreground (its options from FLOWER_*
    variables too, e.g. FLOWER_BASIC_AUTH, so no password is a process argument)."""
    from slipstream.executors.celery.app import make_app

    app = make_app(celery_settings(settings))
    app.start(["flower", f"--address={address}", f"--port={port}"])


def api_app(settings: Settings, *, metrics_dir: str | None = None) -> FastAPI:
    """The API app, with the web UI mounted beside it on the same port, and services of its
    own, closed when the server stops. `metrics_dir`: the folder several server processes
    share their metrics through."""
    # FastAPI loads here, not at module level: other commands need not pay for importing it.
    from slipstream.api.app import create_app
    from slipstream.metrics.database import DatabaseCollector
    from slipstream.web.app import create_web_app, mount_web, stop_streams

    services = build_services(settings)
    # One failed-login count for HTTP Basic, POST /auth/token and the UI's sign-in form.
    throttle = LoginThrottle(clock=services.clock)
    app = create_app(
        services,
        on_shutdown=services.close,
        throttle=throttle,
        metrics_collectors=[DatabaseCollector(MonitoringService(services.db))],
        metrics_dir=metrics_dir,
    )
    web = create_web_app(services, throttle=throttle, secret_key=web_secret_key(settings))
    mount_web(app, web)
    # What the server calls when it starts to stop (run_api_server): the UI's live streams
    # would otherwise hold it open.
    app.state.on_stopping = functools.partial(stop_streams, web)
    return app


def _log_server_key(settings: Settings) -> bytes:
    return log_server_key(web_secret_key(settings))


def web_secret_key(settings: Settings) -> bytes:
    """The key the web UI signs CSRF tokens with: the setting, or one made once in the home
    folder, so every server process of the install (and a restarted one) shares it."""
    if settings.web_secret_key is not None:
        return settings.web_secret_key.encode("utf-8")
    return load_or_create_key(settings.web_secret_key_path)


def api_app_from_env() -> FastAPI:
    """The app factory uvicorn imports in each worker process: settings come from the env, and
    so does the metrics folder run_api_server made for its workers."""
    settings = Settings.from_env()
    configure_logging(settings.log_format)
    return api_app(settings, metrics_dir=os.environ.get(MULTIPROCESS_DIR_VARIABLE))


def _uvicorn_logging(settings: Settings) -> dict[str, Any]:
    """uvicorn's own logging: its usual text lines, or handed to the root logger's JSON."""
    import uvicorn.config

    if settings.log_format == "json":
        return uvicorn_json_config()
    return uvicorn.config.LOGGING_CONFIG


# prometheus_client's own variable: its multiprocess mode, for `api-server --workers N`.
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


# With several API worker processes, how long a stopping server waits for open responses (the
# UI's live streams among them) before it ends them.
STREAMS_GRACE_SECONDS = 5


def run_api_server(settings: Settings, host: str, port: int, *, workers: int = 1) -> None:
    """Serve the REST API in the foreground until SIGTERM or SIGINT."""
    import uvicorn

    open_database(settings).dispose()  # refuse an unmigrated database before binding the port
    if workers == 1:

        class ApiServer(uvicorn.Server):
            """uvicorn's server, ending the UI's live streams first when it stops: uvicorn
            waits for open responses to finish, and a live stream does not."""

            async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
                app.state.on_stopping()
                await super().shutdown(sockets)

        app = api_app(settings)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="info",
            log_config=_uvicorn_logging(settings),
            access_log=False,
        )
        server = ApiServer(config)
        # uvicorn raises a captured Ctrl-C again once it has stopped.
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        if not server.started:
            raise SystemExit(3)  # as uvicorn.run: it could not start (the port is taken...)
    else:
        # Each worker's streams end when uvicorn's graceful wait runs out (below): uvicorn
        # builds the workers' servers itself, so they cannot be told sooner.
        # Each worker is a fresh process that imports the factory: it reads the same env,
        # including the folder where prometheus_client's multiprocess mode (chosen when it is
        # imported, by this variable) keeps every worker's figures, so that whichever worker
        # answers /metrics answers for all.
        with tempfile.TemporaryDirectory(prefix="slipstream-api-metrics-") as metrics_dir:
            os.environ[MULTIPROCESS_DIR_VARIABLE] = metrics_dir
            try:
                uvicorn.run(
                    "slipstream.bootstrap:api_app_from_env",
                    factory=True,
                    host=host,
                    port=port,
                    workers=workers,
                    log_level="info",
                    log_config=_uvicorn_logging(settings),
                    access_log=False,
                    timeout_graceful_shutdown=STREAMS_GRACE_SECONDS,
                )
            finally:
                del os.environ[MULTIPROCESS_DIR_VARIABLE]


def _install_secrets(settings: Settings) -> StoredSecretsFactory | NoStoredSecrets:
    """For `dags test`: the Variables and Connections of the install's metadata database,
    when it is migrated and reachable; else none but the environment's, saying why."""
    try:
        db = Database(settings.database_url)
    except ConfigError as exc:
        why = str(exc)
    else:
        try:
            if schema.is_current(db):
                return secrets_factory(settings)
            why = f"the metadata database at {db.safe_url} is not migrated"
        except DatabaseUnavailable as exc:
            why = str(exc)
        finally:
            db.dispose()
    log.warning(
        "%s: DAG files and tasks see only the environment's Variables and Connections"
        " (AIRFLOW_VAR_*, AIRFLOW_CONN_*)",
        why,
    )
    return NoStoredSecrets(why)


def _unpause_for_test(dags: DagService, dag_id: str) -> None:
    """Unpause the DAG under test; if no file defined it, say which files failed to import
    and why (the reason it may be missing), as the parse just saw them."""
    try:
        dags.set_paused(dag_id, False)
    except DagNotFound:
        errors, _ = dags.import_errors(limit=None)
        if not errors:
            raise
        failures = {e.filename: _last_line(e.stacktrace) for e in errors}
        raise DagFileImportFailed(dag_id, failures) from None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no error text)"


def run_dag_test(
    settings: Settings,
    dag_id: str,
    *,
    conf: dict[str, Any] | None = None,
    logical_date: datetime | None = None,
    on_try_finished: Callable[[str, int, Path], None] | None = None,
) -> Run:
    """Run one DAG in this process on a throwaway database: no scheduler, no run, try or XCom
    written to the real metadata database, user code imported here (as `airflow dags test`
    does). DAG files and tries read (and write) the install's own Variables and Connections,
    as in Airflow: the environment's AIRFLOW_VAR_*/AIRFLOW_CONN_* first, then its database."""
    secrets = _install_secrets(settings)
    with tempfile.TemporaryDirectory(prefix="slipstream-test-") as tmp:
        test_settings = settings.with_changes(
            database_url=f"sqlite:///{Path(tmp) / 'test.db'}",
            log_folder=Path(tmp) / "logs",
            # Only the DAG under test runs: the others' schedules (a catchup=True Airflow 2
            # DAG's backlog...) must not run their tasks in this process.
            dags_paused_at_creation=True,
        )
        db = open_database(test_settings, migrate=True)
        clock = SystemClock()
        try:
            dag_file_sync_reading(test_settings, db, clock, None, secrets).sync_now()
            _unpause_for_test(DagService(db), dag_id)
            executor = InlineExecutor(
                xcom_reader_factory=xcom_reader_factory(test_settings),
                smtp=test_settings.smtp,
                callback_timeout=test_settings.callback_timeout,
                secrets=secrets,
                dag_folders=[str(folder) for folder in dag_folders(test_settings)],
            )
            plans = PlanCache()
            # As `airflow dags test`: the one run asked for, never the schedule's (a catchup
            # DAG's backlog would otherwise run first, one interval after another).
            scheduler = Scheduler(
                db,
                executor,
                clock=clock,
                settings=test_settings,
                plans=plans,
                creates_scheduled_runs=False,
            )
            scheduler.start()
            runs = RunService(db, clock=clock, plans=plans)
            run = runs.trigger(
                dag_id, conf=conf, logical_date=logical_date, triggered_by="test"
            ).run
            seen: set[tuple[str, int, int]] = set()
            while True:
                report = scheduler.tick([Hint.queued_run(dag_id)])
                current = runs.get(dag_id, run.run_id)
                for ti in runs.task_instances(dag_id, run.run_id):
                    ended = ti.state.is_finished or ti.state is TaskState.UP_FOR_RETRY
                    mark = (ti.task_id, ti.map_index, ti.try_number)
                    if ti.try_number and ended and mark not in seen:
                        seen.add(mark)
                        if on_try_finished is not None:
                            path = LogService(test_settings.log_folder).path(
                                dag_id, run.run_id, ti.task_id, ti.try_number, ti.map_index
                            )
                            # A mapped task's instances are shown as task_id[map_index].
                            label = ti.task_id
                            if ti.map_index >= 0:
                                label = f"{ti.task_id}[{ti.map_index}]"
                            on_try_finished(label, ti.try_number, path)
                if current.state.is_finished:
                    scheduler.stop()
                    return current
                progressed = report.events or report.queued or report.runs_started
                wait = 0.0 if progressed else scheduler.seconds_until_due()
                if wait > 0:
                    # Only a retry delay makes us wait: the inline executor has no events to
                    # wait on, so there is nothing to select on but the clock.
                    sys.stdout.flush()
                    time.sleep(min(wait, 1.0))
        finally:
            db.dispose()
