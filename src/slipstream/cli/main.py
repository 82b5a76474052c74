"""The root `slipstream` command. Subcommand modules load only when invoked, so `--help` and
`version` start without importing SQLAlchemy or user code."""

from __future__ import annotations

import importlib

import click

from slipstream import __version__

# name -> (module, attribute, one-line help shown by `slipstream --help`)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "db": (
        "slipstream.cli.db",
        "db",
        "Create, upgrade, check, clean or reset the metadata database.",
    ),
    "dags": ("slipstream.cli.dags", "dags", "List, show, trigger, pause, test and backfill DAGs."),
    "runs": ("slipstream.cli.runs", "runs", "List and show DAG runs."),
    "tasks": ("slipstream.cli.tasks", "tasks", "List tasks, show their states and read logs."),
    "scheduler": ("slipstream.cli.serve", "scheduler", "Run the scheduler."),
    "worker": (
        "slipstream.cli.serve",
        "worker",
        "Run the worker host: the processes that run tries, outliving the scheduler.",
    ),
    "dag-processor": (
        "slipstream.cli.serve",
        "dag_processor",
        "Watch the DAG folders and parse DAG files (beside schedulers that leave it to it).",
    ),
    "api-server": ("slipstream.cli.api_server", "api_server", "Serve the REST API."),
    "standalone": ("slipstream.cli.serve", "standalone", "Run everything on this machine."),
    "users": ("slipstream.cli.users", "users", "Create, list and delete users; manage roles."),
    "tokens": ("slipstream.cli.tokens", "tokens", "Create, list and revoke API tokens."),
    "roles": ("slipstream.cli.roles", "roles", "Create, list and delete roles and permissions."),
    "variables": ("slipstream.cli.variables", "variables", "Get, set, list and import Variables."),
    "connections": (
        "slipstream.cli.connections",
        "connections",
        "Add, get, list, import, export and test Connections.",
    ),
    "rotate-fernet-key": (
        "slipstream.cli.fernet",
        "rotate",
        "Re-encrypt stored Variables and Connections with the first Fernet key.",
    ),
    "pools": ("slipstream.cli.pools", "pools", "List, set, delete, import and export pools."),
    "events": ("slipstream.cli.events", "events", "Read the audit (event) log."),
    "assets": ("slipstream.cli.assets", "assets", "List assets (datasets) and their events."),
    "celery": ("slipstream.cli.celery", "celery", "The Celery executor's Flower (and workers)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        module = importlib.import_module(entry[0])
        command: click.Command = getattr(module, entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, entry[2]) for name, entry in sorted(_COMMANDS.items())]
        rows += [(name, cmd.get_short_help_str()) for name, cmd in sorted(self.commands.items())]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Slipstream: Airflow-style DAGs in Python, scheduled in milliseconds."""


@cli.command()
def version() -> None:
    """Print the Slipstream version."""
    click.echo(__version__)


def main() -> None:
    cli(prog_name="slipstream")


if __name__ == "__main__":
    main()
