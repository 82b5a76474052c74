"""`slipstream db migrate|reset|check|check-migrations|clean`."""

from __future__ import annotations

import contextlib
import sys

import click

from slipstream.bootstrap import database_checks
from slipstream.cli.actor import cli_actor
from slipstream.cli.dags import parse_date
from slipstream.cli.errors import handle_errors
from slipstream.cli.settings import load_settings, open_services
from slipstream.core.cleanup import RULES, CleanTable, Cutoff, Pruned, choose_tables, valid_names
from slipstream.errors import DatabaseUnavailable, InvalidInputError
from slipstream.services.db_cleanup import DEFAULT_BATCH_SIZE, TableResult
from slipstream.store import schema
from slipstream.store.db import Database


@click.group()
def db() -> None:
    """Create, upgrade, check, clean or reset the metadata database."""


@db.command()
@handle_errors
def migrate() -> None:
    """Create the schema or upgrade it to the newest version (safe to run again)."""
    database = Database(load_settings().database_url)
    click.echo(f"DB: {database.safe_url}")
    try:
        before, after = schema.migrate(database)
    finally:
        database.dispose()
    if before == after:
        click.echo(f"Database is already at the newest schema ({after}).")
    else:
        click.echo(f"Migrated the database from {before or 'empty'} to {after}.")
    click.echo("Database migrating done!")


@db.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def reset(yes: bool) -> None:
    """Drop every table and recreate the schema. All runs and history are lost."""
    database = Database(load_settings().database_url)
    try:
        if not yes:
            click.confirm(f"This drops all data in {database.safe_url}. Continue?", abort=True)
        schema.reset(database)
    finally:
        database.dispose()
    click.echo("Database reset done!")


@db.command()
@click.option(
    "--retry",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="How many more times to try when the database does not answer.",
)
@click.option(
    "--retry-delay",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds between tries.",
)
@handle_errors
def check(retry: int, retry_delay: float) -> None:
    """Check that the metadata database can be reached: exit 0, or say why not and exit 5."""

    def say_retrying(left: int, error: DatabaseUnavailable) -> None:
        click.echo(f"{error}; {left} more tries, in {retry_delay:g} s", err=True)

    with database_checks(load_settings()) as checks:
        checks.check(retries=retry, retry_delay=retry_delay, on_retry=say_retrying)
    click.echo("Connection successful.")


@db.command("check-migrations")
@click.option(
    "--migration-wait-timeout",
    "-t",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the schema to reach this Slipstream's revision.",
)
@handle_errors
def check_migrations(migration_wait_timeout: float) -> None:
    """Wait until the database's schema is at this Slipstream's newest revision (for a
    process that must not start before `db migrate` has run). Exits 5, naming the revision
    found and the one expected, if it is not there by the timeout."""
    said = False

    def say_waiting(current: str | None) -> None:
        nonlocal said
        if not said:
            found = f"revision {current}" if current else "no revision"
            click.echo(
                f"Waiting up to {migration_wait_timeout:g} s for migrations (the database is"
                f" at {found})...",
                err=True,
            )
            said = True

    with database_checks(load_settings()) as checks:
        head = checks.wait_for_migrations(migration_wait_timeout, on_wait=say_waiting)
    click.echo(f"The database schema is at {head}, the revision this Slipstream expects.")


_NO_ARCHIVE = (
    "Slipstream does not archive purged rows (Airflow copies them into _airflow_deleted__*"
    " tables of the same database, which keeps it as large): back the database up first if"
    " you need the rows, then pass --skip-archive to delete them"
)


def _names(raw: str | None, option: str) -> list[str] | None:
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if not names:
        raise InvalidInputError(f"{option} names nothing", field=option)
    return names


@db.command()
@click.option(
    "--clean-before-timestamp",
    required=True,
    metavar="TIMESTAMP",
    help="Purge data older than this ISO 8601 date or timestamp, e.g. '2024-01-01' or"
    " '2024-01-01 00:00:00+01:00'. Without a timezone it is read as UTC (Airflow reads it in"
    " its default timezone, UTC unless changed; Slipstream has no other).",
)
@click.option(
    "--tables",
    "-t",
    metavar="NAMES",
    help="Tables to clean, comma-separated (default: all), by Airflow's names. Options: "
    + ", ".join(valid_names())
    + ". Names of Airflow tables Slipstream keeps no rows for are reported as skipped.",
)
@click.option(
    "--dag-ids",
    metavar="IDS",
    help="Only these DAGs' data, comma-separated. As in Airflow, tables not about a DAG"
    " (job, session, revoked_token, import_error) are cleaned whole.",
)
@click.option("--exclude-dag-ids", metavar="IDS", help="Leave these DAGs' data, comma-separated.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; change nothing.")
@click.option(
    "--skip-archive",
    is_flag=True,
    help="Delete without keeping a copy. Required to delete: Slipstream never archives"
    " purged rows into _airflow_deleted__* tables as Airflow does by default.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Most rows of a table deleted per transaction (a run's task instances, tries and"
    " XComs go in the same one): a running scheduler waits at most one batch.",
)
@click.option("--verbose", "-v", is_flag=True, help="Print each table's rules and each batch.")
@click.option("--yes", "-y", is_flag=True, help="Do not prompt to confirm. Use with care!")
@handle_errors
def clean(
    clean_before_timestamp: str,
    tables: str | None,
    dag_ids: str | None,
    exclude_dag_ids: str | None,
    dry_run: bool,
    skip_archive: bool,
    batch_size: int,
    verbose: bool,
    yes: bool,
) -> None:
    """Purge old records from the metadata database, as Airflow's `db clean`.

    Finished runs older than the timestamp go with their task instances, tries, XComs and
    log files; runs not finished, and each DAG's latest non-manual run, stay. Deletes run in
    batches, each its own short transaction, so a running scheduler carries on.
    """
    before = parse_date(clean_before_timestamp, "--clean-before-timestamp")
    assert before is not None
    choice = choose_tables(_names(tables, "--tables"))
    cutoff = Cutoff.of(
        before,
        _names(dag_ids, "--dag-ids") or (),
        _names(exclude_dag_ids, "--exclude-dag-ids") or (),
    )
    if not dry_run and not skip_archive:
        raise InvalidInputError(_NO_ARCHIVE, field="skip_archive")
    services = open_services()
    cleanup = services.cleanup
    click.echo(f"DB: {services.db.safe_url}")
    listed = ", ".join(t.value for t in choice.tables) or "no table"
    if dry_run:
        click.echo("Performing dry run for db cleanup: nothing is deleted.")
        click.echo(f"Data prior to {before.isoformat()} would be purged from: {listed}")
    else:
        click.echo(f"Data prior to {before.isoformat()} is purged from: {listed}")
    if verbose:
        _print_rules(choice.tables)
    for name, reason in choice.without_rows:
        click.echo(f"{name}: skipped, Slipstream keeps no such rows: {reason}")
    if cutoff.dag_ids or cutoff.exclude_dag_ids:
        for table in choice.tables:
            if not RULES[table].by_dag:
                click.echo(f"{table.value}: not about a DAG, cleaned whatever the DAG filters")
    by = cli_actor()
    if dry_run:
        results = cleanup.count(cutoff, choice.tables)
        for result in results:
            click.echo(_line(result, "would be deleted"))
        cleanup.record(by=by, cutoff=cutoff, tables=choice.tables, dry_run=True, results=results)
        return
    if not yes:
        _confirm(before.isoformat(), listed)

    def say_batch(table: CleanTable, number: int, pruned: Pruned) -> None:
        if verbose:
            click.echo(f"{table.value}: batch {number}: {_many(pruned.rows, 'row')}")

    results = []
    try:
        for table in choice.tables:
            (result,) = cleanup.clean(cutoff, [table], batch_size=batch_size, on_batch=say_batch)
            results.append(result)
            click.echo(_line(result, "deleted"))
    except BaseException:
        # Say in the audit log what was deleted before the clean stopped, if it can be said.
        with contextlib.suppress(Exception):
            cleanup.record(
                by=by,
                cutoff=cutoff,
                tables=choice.tables,
                dry_run=False,
                results=results,
                completed=False,
            )
        raise
    cleanup.record(by=by, cutoff=cutoff, tables=choice.tables, dry_run=False, results=results)
    click.echo("Finished performing delete.")


def _confirm(before: str, listed: str) -> None:
    click.echo(
        f"This deletes every row older than {before} from {listed}, with the log files of the"
        " runs, task instances and tries deleted. It cannot be undone: back the database up"
        " first, or see what would go with --dry-run."
    )
    answer = click.prompt(
        "Enter 'delete rows' (without quotes) to proceed", default="", show_default=False
    )
    if answer.strip() != "delete rows":
        click.echo("User did not confirm; exiting.", err=True)
        sys.exit(1)


def _print_rules(tables: tuple[CleanTable, ...]) -> None:
    for table in tables:
        rule = RULES[table]
        kept = f"; never deleted: {rule.keeps}" if rule.keeps else ""
        click.echo(f"{table.value}: table {rule.table}, age from {rule.recency}{kept}")


def _line(result: TableResult, verb: str) -> str:
    table = RULES[result.table].table
    text = f"{result.table.value} ({table}): {_many(result.rows, 'row')} {verb}"
    if result.batches:
        text += f" in {_many(result.batches, 'batch', 'batches')}"
    held = [f"{count} {name}" for name, count in sorted(result.with_them.items()) if count]
    if held:
        text += f", with {', '.join(held)}"
    if result.log_files:
        text += f"; {_many(result.log_files, 'log file')} removed"
    return text


def _many(count: int, one: str, more: str | None = None) -> str:
    return f"{count} {one if count == 1 else more or one + 's'}"
