"""`slipstream roles ...`: create, list and delete roles, add and remove their permissions.

Shaped like Airflow's `airflow roles` (FAB auth manager): several roles per call, and
`-r/--resource` and `-a/--action` each take one or more values. Resources are Airflow's names
(`DAGs`, `DAG Runs`, ...), `DAG:<dag_id>` for one DAG and, beyond Airflow, `DAG tag:<tag>` for
every DAG carrying a tag. A running API server sees changes within a few seconds.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import click

from slipstream.auth.permissions import RESOURCES, VERBS
from slipstream.bootstrap import account_services, open_database
from slipstream.cli.actor import cli_actor
from slipstream.cli.errors import handle_errors
from slipstream.cli.output import OUTPUT_OPTION, render
from slipstream.cli.settings import load_settings
from slipstream.clock import SystemClock
from slipstream.services.roles import Pair, RoleService, check_pairs

_GREEDY = {"-r": "-r", "--resource": "--resource", "-a": "-a", "--action": "--action"}


class _ManyValuesCommand(click.Command):
    """Lets `-r` and `-a` take several values after one flag, as Airflow's argparse
    `nargs="+"` does: `-r A B -a x y` is read as `-r A -r B -a x -a y`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        expanded: list[str] = []
        current: str | None = None  # the flag whose values are being read
        waiting = False  # the flag's first value is still to come
        for index, arg in enumerate(args):
            if arg == "--":
                expanded.extend(args[index:])
                break
            flag = arg.split("=", 1)[0] if arg.startswith("--") else arg
            if flag in _GREEDY:
                current = _GREEDY[flag]
                waiting = "=" not in arg
                expanded.append(arg)
            elif arg.startswith("-") and not waiting:
                current = None
                expanded.append(arg)
            elif current is not None and not waiting:
                expanded.extend([current, arg])
            else:
                waiting = False
                expanded.append(arg)
        return super().parse_args(ctx, expanded)


RESOURCE_HELP = (
    f"One or more resources: {', '.join(RESOURCES)}; DAG:<dag_id> for one DAG;"
    " DAG tag:<tag> for every DAG with that tag."
)
ACTION_HELP = f"One or more actions: {', '.join(VERBS)}."


def open_role_service() -> RoleService:
    db = open_database(load_settings())
    click.get_current_context().call_on_close(db.dispose)
    return account_services(db, SystemClock()).roles


@click.group()
def roles() -> None:
    """Create, list and delete roles; add and remove their permissions."""


@roles.command()
@click.argument("role", nargs=-1, required=True)
@handle_errors
def create(role: tuple[str, ...]) -> None:
    """Create empty roles (an existing one is left as it is, as Airflow does)."""
    service = open_role_service()
    added = 0
    for name in role:
        if service.exists(name):
            click.echo(f"Role '{name}' already exists", err=True)
            continue
        service.create(name, by=cli_actor())
        added += 1
    click.echo(f"Added {added} role(s)")


@roles.command("list")
@click.option("--permission", "-p", is_flag=True, help="Show each role's permissions too.")
@OUTPUT_OPTION
@handle_errors
def list_roles(permission: bool, output: str) -> None:
    """List roles, built-in and custom."""
    found, _ = open_role_service().list_roles()
    if not permission:
        render([{"name": r.name} for r in found], ["name"], output)
        return
    # One row per role and resource, the actions joined, as Airflow prints them.
    actions: dict[tuple[str, str], list[str]] = defaultdict(list)
    for role in found:
        for verb, resource in role.permissions:
            actions[(role.name, resource)].append(verb)
    rows = [
        {"name": name, "resource": resource, "action": ",".join(sorted(verbs))}
        for (name, resource), verbs in sorted(actions.items())
    ]
    render(rows, ["name", "resource", "action"], output)


@roles.command()
@click.argument("role", nargs=-1, required=True)
@handle_errors
def delete(role: tuple[str, ...]) -> None:
    """Delete custom roles; users holding one lose it."""
    service = open_role_service()
    for name in role:  # every name is checked before anything is deleted
        service.check_changeable(name)
    for name in role:
        holders = service.delete(name, by=cli_actor())
        if holders:
            click.echo(f"Role '{name}' was taken from: {', '.join(holders)}", err=True)
    click.echo(f"Deleted {len(role)} role(s)")


@roles.command("add-perms", cls=_ManyValuesCommand)
@click.argument("role", nargs=-1, required=True)
@click.option("--resource", "-r", multiple=True, required=True, help=RESOURCE_HELP)
@click.option("--action", "-a", multiple=True, required=True, help=ACTION_HELP)
@handle_errors
def add_perms(role: tuple[str, ...], resource: tuple[str, ...], action: tuple[str, ...]) -> None:
    """Give roles permissions: every action on every resource named."""
    service = open_role_service()
    pairs = check_pairs(itertools.product(action, resource))
    _check_custom(service, role)
    count = 0
    for name in role:
        _, added = service.add_permissions(name, pairs, by=cli_actor())
        for verb, target in added:
            click.echo(f"Added {verb} on {target} to role {name}")
        count += len(added)
    click.echo(f"Added {count} permission(s)")


@roles.command("del-perms", cls=_ManyValuesCommand)
@click.argument("role", nargs=-1, required=True)
@click.option("--resource", "-r", multiple=True, required=True, help=RESOURCE_HELP)
@click.option(
    "--action", "-a", multiple=True, help=f"{ACTION_HELP} Leave out to remove every action."
)
@handle_errors
def del_perms(role: tuple[str, ...], resource: tuple[str, ...], action: tuple[str, ...]) -> None:
    """Take permissions away from roles: the actions named (or all) on the resources named."""
    service = open_role_service()
    if action:
        check_pairs(itertools.product(action, resource))
    _check_custom(service, role)
    count = 0
    for name in role:
        wanted: list[Pair] = [
            (verb, target)
            for verb, target in service.get(name).permissions
            if target in resource and (not action or verb in action)
        ]
        _, removed = service.remove_permissions(name, wanted, by=cli_actor())
        for verb, target in removed:
            click.echo(f"Deleted {verb} on {target} from role {name}")
        count += len(removed)
    click.echo(f"Deleted {count} permission(s)")


def _check_custom(service: RoleService, names: tuple[str, ...]) -> None:
    """Every role exists and may be changed, before any is: a refusal changes nothing."""
    for name in names:
        service.check_changeable(name)
