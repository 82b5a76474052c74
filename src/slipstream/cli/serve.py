"""`slipstream scheduler`, `worker`, `dag-processor` and `standalone`: the long-running
processes."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable

import click
from sqlalchemy.engine import make_url

from slipstream.auth.passwords import random_password
from slipstream.bootstrap import (
    MetricsAddress,
    account_services,
    open_database,
    run_dag_processor,
    run_scheduler,
    run_worker,
)
from slipstream.cli.errors import handle_errors
from slipstream.cli.settings import load_settings
from slipstream.clock import SystemClock
from slipstream.config import Settings
from slipstream.errors import UserNotFound
from slipstream.lifeline import die_with_parent
from slipstream.log_format import configure_logging as configure_log_format
from slipstream.scheduler.tick import Scheduler
from slipstream.store.db import Database
from slipstream.worker.host import WorkerHost
from slipstream.worker.lock import HostAlreadyRunning


def configure_logging(settings: Settings) -> None:
    """The process's own logs, as text or JSON lines (SLIPSTREAM_LOG_FORMAT)."""
    configure_log_format(settings.log_format)


def metrics_options(command: Callable[..., None]) -> Callable[..., None]:
    """--metrics-port and --metrics-host, for the processes that serve their own metrics."""
    command = click.option(
        "--metrics-host",
        default="127.0.0.1",
        show_default=True,
        help="Address the metrics are served on (0.0.0.0: every interface).",
    )(command)
    return click.option(
        "--metrics-port",
        type=click.IntRange(0, 65535),
        default=None,
        help="Serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port).",
    )(command)


def _metrics_address(host: str, port: int | None) -> MetricsAddress | None:
    return None if port is None else MetricsAddress(host, port)


@click.command()
@metrics_options
@handle_errors
def scheduler(metrics_port: int | None, metrics_host: str) -> None:
    """Run the scheduler and DAG file parsing in the foreground; tries run in this home's
    worker host (`slipstream worker`), started beside it when none runs."""
    settings = load_settings()
    configure_logging(settings)

    def ready(s: Scheduler) -> None:
        click.echo(f"scheduler | ready (job {s.job_id}); DAGs from {settings.dags_folder}")

    run_scheduler(
        settings, on_ready=ready, metrics_address=_metrics_address(metrics_host, metrics_port)
    )
    click.echo("scheduler | stopped")


@click.command()
@click.option(
    "--autostarted",
    is_flag=True,
    hidden=True,
    help="Started by a scheduler: exit once no scheduler needs this host.",
)
@handle_errors
def worker(autostarted: bool) -> None:
    """Run the worker host in the foreground: the warm worker processes that run tries for
    this home's scheduler, which attaches to it. Tries outlive a scheduler's restart. One per
    SLIPSTREAM_HOME; a scheduler starts one itself unless SLIPSTREAM_WORKER_AUTOSTART=false."""
    settings = load_settings()
    configure_logging(settings)

    def ready(host: WorkerHost) -> None:
        click.echo(
            f"worker | ready (job {host.job_id}, pid {os.getpid()}); {settings.workers}"
            f" workers, {settings.parallelism} tries at once, at {settings.worker_socket_path}"
        )

    try:
        run_worker(settings, autostarted=autostarted, on_ready=ready)
    except HostAlreadyRunning as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    click.echo("worker | stopped")


@click.command("dag-processor")
@metrics_options
@handle_errors
def dag_processor(metrics_port: int | None, metrics_host: str) -> None:
    """Watch the DAG folders and parse DAG files in the foreground, for schedulers started with
    SLIPSTREAM_STANDALONE_DAG_PROCESSOR=true (several may run; each parses every file)."""
    settings = load_settings()
    configure_logging(settings)

    def ready() -> None:
        click.echo(f"dag-processor | ready; DAGs from {settings.dags_folder}")

    run_dag_processor(
        settings, on_ready=ready, metrics_address=_metrics_address(metrics_host, metrics_port)
    )
    click.echo("dag-processor | stopped")


@click.command()
@click.option("--host", "-H", default="0.0.0.0", show_default=True, help="API address to bind.")
@click.option("--port", "-p", type=click.IntRange(1, 65535), default=8080, show_default=True)
@metrics_options
@handle_errors
def standalone(host: str, port: int, metrics_port: int | None, metrics_host: str) -> None:
    """Migrate the database, load the examples, create `admin`, and run the scheduler, the
    workers and the API server (with the web UI) in the foreground. --metrics-port serves the
    scheduler's metrics; the API server's are at /metrics on its own port."""
    settings = load_settings()
    configure_logging(settings)
    click.echo("standalone | Starting Slipstream standalone")
    click.echo(f"standalone | home: {settings.home}")
    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    click.echo(f"standalone | database: {shown}")
    db = open_database(settings, migrate=True)
    # The API server is a process of its own (the scheduler's loop stays single-threaded). It
    # needs only the migrated database, so it starts now and imports its web stack while
    # admin's password is hashed and the scheduler starts: start-up costs the slowest of these,
    # not their sum. Nobody can sign in as admin before the password is printed.
    command = [sys.executable, "-m", "slipstream.cli.main", "api-server"]
    # However standalone ends (kill -9 included), its API server must not stay behind still
    # accepting triggers for a scheduler that is gone. Nothing runs threads yet, so a
    # preexec_fn is safe here.
    api = subprocess.Popen(
        [*command, "--host", host, "--port", str(port)],
        preexec_fn=functools.partial(die_with_parent, os.getpid(), signal.SIGKILL),  # noqa: PLW1509
    )
    try:
        try:
            admin_password = _ensure_admin(db)
        finally:
            db.dispose()

        def ready(s: Scheduler) -> None:
            shown_host = "localhost" if host in ("0.0.0.0", "::") else host
            click.echo(f"standalone | DAGs folder: {settings.dags_folder}")
            click.echo(f"standalone | UI and API at http://{shown_host}:{port}")
            if admin_password is not None:
                # Printed once, now; only its argon2id hash is kept.
                click.echo(
                    f"standalone | Login with username: admin  password: {admin_password}"
                    f" (the UI at http://{shown_host}:{port}/ and the API)"
                )
            else:
                click.echo(
                    "standalone | Login as admin (forgot the password? `slipstream users"
                    " reset-password --username admin --use-random-password`)"
                )
            click.echo(
                f"standalone | Slipstream is ready: scheduler job {s.job_id},"
                f" {settings.workers} workers. Trigger with `slipstream dags trigger my_dag`."
            )

        run_scheduler(
            settings,
            migrate=True,
            on_ready=ready,
            metrics_address=_metrics_address(metrics_host, metrics_port),
        )
    finally:
        api.terminate()
        try:
            api.wait(15)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait()
    click.echo("standalone | Complete")


def _ensure_admin(db: Database) -> str | None:
    """Create `admin` (role Admin) with a random password when there is none; returns the
    password to print once, or None when admin already exists."""
    users = account_services(db, SystemClock()).users
    try:
        users.get("admin")
        return None
    except UserNotFound:
        password = random_password()
        users.create(
            username="admin",
            email="admin@example.com",
            first_name="Admin",
            last_name="User",
            role="Admin",
            password=password,
        )
        return password
