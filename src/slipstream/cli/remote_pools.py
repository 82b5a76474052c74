"""The remote form of `slipstream pools ...`: the same rows and files as the local commands, from
and to a server's /api/v1/pools. `pools.py` renders them, so both forms print alike."""

from __future__ import annotations

from typing import Any

import click

from slipstream.cli.remote import Client, path
from slipstream.core.pools import DEFAULT_POOL, Pool
from slipstream.errors import ConflictError, NotFoundError, SlipstreamError


def row(body: dict[str, Any]) -> dict[str, Any]:
    """A pool of the API as `pools.py` shows one."""
    return {
        "pool": body.get("name"),
        "slots": body.get("slots"),
        "description": body.get("description") or "",
        "include_deferred": bool(body.get("include_deferred")),
        "running_slots": body.get("running_slots"),
        "queued_slots": body.get("queued_slots"),
        "scheduled_slots": body.get("scheduled_slots"),
        "open_slots": body.get("open_slots"),
    }


def list_rows(client: Client) -> list[dict[str, Any]]:
    return [row(body) for body in client.pages(path("pools"), "pools", order_by="id")]


def get_row(client: Client, name: str) -> dict[str, Any]:
    return row(client.get(path("pools", name)))


def set_pool(client: Client, pool: Pool) -> dict[str, Any]:
    """Create the pool or replace its fields, as the local `pools set` does: a PATCH of the
    whole pool, or a POST when the server has none of that name."""
    body: dict[str, Any] = {
        "name": pool.name,
        "slots": pool.slots,
        "description": pool.description,
        "include_deferred": pool.include_deferred,
    }
    mask: list[str] | None = None
    if pool.name == DEFAULT_POOL:
        # The API changes only default_pool's slots and include_deferred (Airflow's rule);
        # a new description goes in the mask too, so the server refuses it rather than it
        # being dropped unsaid.
        current = client.get(path("pools", DEFAULT_POOL))
        mask = ["slots", "include_deferred"]
        if (current.get("description") or "") != (pool.description or ""):
            mask.append("description")
    for _ in range(2):  # someone may create or delete the pool between our two requests
        try:
            answer = client.request(
                "PATCH", path("pools", pool.name), params={"update_mask": mask}, json=body
            )
            return row(answer.json())
        except NotFoundError:
            pass
        try:
            return row(client.request("POST", path("pools"), json=body).json())
        except ConflictError:
            continue
    raise ConflictError(f"pool {pool.name!r} was changed by someone else meanwhile: try again")


def delete_pool(client: Client, name: str) -> None:
    client.request("DELETE", path("pools", name))


def import_pools(client: Client, pools: list[Pool]) -> int:
    """Create or replace each pool (already checked, all of them, by the caller). The API has
    no transaction over several pools, so a refusal part way leaves the earlier ones written:
    the message says which."""
    written: list[str] = []
    for pool in pools:
        try:
            set_pool(client, pool)
        except SlipstreamError:
            done = ", ".join(written) if written else "none"
            click.echo(f"Stopped at pool {pool.name!r}; pools written before it: {done}", err=True)
            raise
        written.append(pool.name)
    return len(written)


def export(client: Client) -> dict[str, dict[str, Any]]:
    """Every pool in Airflow's export format, as the local `pools export` writes it."""
    return {
        body["name"]: {
            "slots": body.get("slots"),
            "description": body.get("description") or "",
            "include_deferred": bool(body.get("include_deferred")),
        }
        for body in client.pages(path("pools"), "pools", order_by="id")
    }
