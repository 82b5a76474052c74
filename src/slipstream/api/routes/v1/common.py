"""What every /api/v1 route shares: paging, `order_by`, date-time query values and the refusal
of query parameters a route does not take, each answered as Airflow 2's strict Connexion did."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from slipstream.api.deps import ServicesDep
from slipstream.api.errors import ApiError
from slipstream.errors import InvalidInputError

MAX_OFFSET = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


def page_of(limit: int, offset: int, max_page_limit: int) -> Page:
    """`limit` (capped at `max_page_limit`, 0 meaning the default of 100) and `offset` (>= 0)
    checked as Airflow does, for routes that read them as plain parameters."""
    if limit < 0:
        raise InvalidInputError("Page limit must be a positive integer", field="limit")
    if offset < 0:
        raise InvalidInputError("offset must not be negative", field="offset")
    if offset > MAX_OFFSET:  # the databases' OFFSET is a signed 64-bit integer
        raise InvalidInputError(f"offset must be at most {MAX_OFFSET}", field="offset")
    if limit == 0:
        limit = 100
    return Page(limit=min(limit, max_page_limit), offset=offset)


# async: a sync dependency would cost every request a round trip through the threadpool.
async def paging(services: ServicesDep, limit: int = Query(100), offset: int = Query(0)) -> Page:
    """The same as a route dependency reading `limit` (default 100) and `offset`."""
    return page_of(limit, offset, services.settings.api_max_page_limit)


PageDep = Annotated[Page, Depends(paging)]


def order_by(raw: str | None, allowed: Mapping[str, str], default: str) -> tuple[str, bool]:
    """`field` or `-field` as (the store's column, descending); 400 naming a field that cannot
    be sorted on. `allowed` maps API field names to column names."""
    value = (raw or default).strip()
    descending = value.startswith("-")
    name = value.removeprefix("-")
    if name not in allowed:
        raise InvalidInputError(
            f"Ordering with '{name}' is disallowed or the attribute does not exist on the model",
            field="order_by",
        )
    return allowed[name], descending


def parse_datetime(raw: str, field: str) -> datetime:
    """An RFC 3339 date-time with a timezone, as aware UTC; 400 in Connexion's words if not."""
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None or "T" not in text.upper():
        raise InvalidInputError(f"'{raw}' is not a 'date-time' - '{field}'", field=field)
    return value.astimezone(UTC)


def optional_datetime(raw: str | None, field: str) -> datetime | None:
    return None if raw is None else parse_datetime(raw, field)


def iso(value: datetime | None) -> str | None:
    """Airflow's date-time form: `isoformat()` with `+00:00`, microseconds only when set."""
    return None if value is None else value.isoformat()


def _query_names(dependant: Dependant, into: set[str]) -> set[str]:
    for param in dependant.query_params:
        into.add(param.alias)
    for sub in dependant.dependencies:
        _query_names(sub, into)
    return into


def unknown_query_guard() -> Callable[[Request], Awaitable[None]]:
    """A router dependency refusing query parameters the matched route does not declare."""
    known: dict[int, frozenset[str]] = {}  # per route, computed once

    # async: it only looks at the request, and a sync dependency would cost every request a
    # round trip through the threadpool.
    async def guard(request: Request) -> None:
        route = request.scope.get("route")
        if not isinstance(route, APIRoute) or not request.query_params:
            return
        names = known.get(id(route))
        if names is None:
            names = known[id(route)] = frozenset(_query_names(route.dependant, set()))
        unknown = sorted(set(request.query_params) - names)
        if unknown:
            raise ApiError(
                400,
                f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            )

    return guard
