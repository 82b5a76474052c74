"""Admin -> Pools: every pool with the figures /api/v1/pools gives (slots, occupied, running,
queued, scheduled, deferred, open), refreshed live as runs change; a pool's page; and, for
visitors whose roles allow editing pools (the API's permission), creating a pool, changing
its slots, description and include_deferred, and deleting it. Every change goes through the
same PoolService as the API and `slipstream pools`, which writes the audit entry and wakes the
scheduler; default_pool may be resized but not deleted (nor its description changed), as
the service refuses for every caller."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.auth.roles import Action
from slipstream.core.pools import DEFAULT_POOL, Pool, PoolUsage
from slipstream.errors import NotFoundError, SlipstreamError
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.errors import is_htmx
from slipstream.web.form_errors import WHOLE_FORM, FormErrors
from slipstream.web.forms import form_of
from slipstream.web.live import DAGS_TOPIC
from slipstream.web.nav import NavItem
from slipstream.web.pool_use import POOLS_PATH, pool_url
from slipstream.web.sessions import allowed
from slipstream.web.visitor import Visitor

PATH = POOLS_PATH
NAV: NavItem | None = None  # the Admin entry (pages/admin.py) leads here

PoolReader = Annotated[Visitor, Depends(allowed(Action.POOLS_READ))]
PoolEditor = Annotated[Visitor, Depends(allowed(Action.POOLS_EDIT))]

# The service's field names -> this page's inputs.
INPUTS = {
    "name": "name",
    "slots": "slots",
    "description": "description",
    "include_deferred": "include_deferred",
    "pool_name": WHOLE_FORM,
    "update_mask": WHOLE_FORM,
}
NOTICES = {
    "created": "Pool created.",
    "saved": "Changes saved. The scheduler uses the new size from its next pass.",
    "deleted": "Pool deleted. Tries already queued or running in it run on; its tasks' next"
    " tries fail until a pool of that name exists again.",
}
# The element a live refresh of the list replaces.
LIST_ID = "pool-list"
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")
_FLAGS = {"true": True, "false": False}


@dataclass(frozen=True, slots=True)
class PoolForm:
    """A pool form's fields as sent (shown again beside their errors)."""

    name: str = ""
    slots: str = ""
    description: str = ""
    include_deferred: str = "false"
    has_description: bool = False
    has_include_deferred: bool = False

    @classmethod
    def of(cls, form: Mapping[str, str]) -> PoolForm:
        return cls(
            name=form.get("name", ""),
            slots=form.get("slots", "").strip(),
            description=form.get("description", ""),
            include_deferred=form.get("include_deferred", "false"),
            has_description="description" in form,
            has_include_deferred="include_deferred" in form,
        )

    @classmethod
    def shown(cls, usage: PoolUsage) -> PoolForm:
        pool = usage.pool
        return cls(
            name=pool.name,
            slots=str(pool.slots),
            description=pool.description or "",
            include_deferred="true" if pool.include_deferred else "false",
        )

    def checked_slots(self, errors: FormErrors) -> int | None:
        """The slots as a number (the service checks its range); None after an error."""
        if not self.slots:
            errors.add("slots", "Enter a number of slots (0 or more).")
            return None
        if not _WHOLE_NUMBER.fullmatch(self.slots):
            errors.add("slots", f"Slots must be a whole number, not {self.slots!r}.")
            return None
        try:
            return int(self.slots)
        except ValueError:  # more digits than Python reads: far above any pool's bound
            errors.add("slots", "Slots must be at most 2147483647.")
            return None

    def checked_flag(self, errors: FormErrors) -> bool:
        flag = _FLAGS.get(self.include_deferred)
        if flag is None:
            errors.add("include_deferred", "include_deferred must be true or false.")
            return False
        return flag


def _render(
    request: Request,
    parts: WebParts,
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> Response:
    values = {
        "title": "Pools",
        "nav_key": "admin",
        "admin_tab": "pools",
        "pool_url": pool_url,
        "default_pool": DEFAULT_POOL,
        "list_id": LIST_ID,
        "errors": FormErrors(),
        "form": PoolForm(),
        "notice": None,
        **context,
    }
    return parts.templates.render(request, name, values, status=status)


# ---------------------------------------------------------------------------- the list


def _list_page(
    request: Request,
    parts: WebParts,
    visitor: Visitor,
    *,
    notice: str | None = None,
    form: PoolForm | None = None,
    errors: FormErrors | None = None,
) -> Response:
    pools, total = parts.services.pools.list_pools(order_by="name")
    context = {
        "pools": pools,
        "total": total,
        "can_edit": visitor.can(Action.POOLS_EDIT),
        # The figures follow runs as they change, through the `dags` topic (live.js).
        "is_live": visitor.can(Action.DAGS_READ),
        "live_topic": DAGS_TOPIC,
        "form": form or PoolForm(),
        "errors": errors or FormErrors(),
        "open_create": bool(errors),
        "notice": NOTICES.get(notice or ""),
    }
    template = "admin/pools.html"
    if is_htmx(request) and request.headers.get("HX-Target") == LIST_ID:
        template = "admin/_pool_list.html"
    status = errors.status if errors else 200
    return _render(request, parts, template, context, status=status)


def pools_page(
    request: Request, visitor: PoolReader, parts: PartsDep, notice: str = ""
) -> Response:
    return _list_page(request, parts, visitor, notice=notice)


async def create_pool(request: Request, visitor: PoolEditor, parts: PartsDep) -> Response:
    form = PoolForm.of(await form_of(request))
    errors = FormErrors()
    if not form.name.strip():
        errors.add("name", "Enter a pool name.")
    slots = form.checked_slots(errors)
    include_deferred = form.checked_flag(errors)

    def create() -> PoolUsage | FormErrors:
        if errors or slots is None:
            return errors
        pool = Pool(form.name, slots, form.description or None, include_deferred)
        try:
            return parts.services.pools.create(pool, by=visitor.user.username)
        except SlipstreamError as refusal:
            return FormErrors.of(refusal, INPUTS, conflict="name")

    made = await run_in_threadpool(create)
    if isinstance(made, FormErrors):
        return await run_in_threadpool(
            lambda: _list_page(request, parts, visitor, form=form, errors=made)
        )
    return RedirectResponse(f"{pool_url(made.pool.name)}?notice=created", status_code=303)


# ---------------------------------------------------------------------------- one pool


def _pool_page(
    request: Request,
    parts: WebParts,
    visitor: Visitor,
    name: str,
    *,
    notice: str | None = None,
    form: PoolForm | None = None,
    errors: FormErrors | None = None,
) -> Response:
    usage = parts.services.pools.get(name)
    context = {
        "title": f"Pool {usage.pool.name}",
        "usage": usage,
        "pool": usage.pool,
        "is_default": usage.pool.name == DEFAULT_POOL,
        "can_edit": visitor.can(Action.POOLS_EDIT),
        "form": form or PoolForm.shown(usage),
        "errors": errors or FormErrors(),
        "notice": NOTICES.get(notice or ""),
    }
    status = errors.status if errors else 200
    return _render(request, parts, "admin/pool.html", context, status=status)


def pool_page(
    request: Request, name: str, visitor: PoolReader, parts: PartsDep, notice: str = ""
) -> Response:
    return _pool_page(request, parts, visitor, name, notice=notice)


async def save_pool(request: Request, name: str, visitor: PoolEditor, parts: PartsDep) -> Response:
    """Change the pool's slots, description and include_deferred: each field the form sends
    (default_pool's form sends no description, which the service would refuse)."""
    form = PoolForm.of(await form_of(request))
    errors = FormErrors()
    changes: dict[str, Any] = {"slots": form.checked_slots(errors)}
    if form.has_description:
        changes["description"] = form.description or None
    if form.has_include_deferred:
        changes["include_deferred"] = form.checked_flag(errors)

    def save() -> FormErrors | None:
        parts.services.pools.get(name)  # 404 before any field error
        if errors:
            return errors
        try:
            parts.services.pools.update(name, changes, by=visitor.user.username)
        except NotFoundError:
            raise
        except SlipstreamError as refusal:
            return FormErrors.of(refusal, INPUTS, conflict="name")
        return None

    refused = await run_in_threadpool(save)
    if refused is not None:
        return await run_in_threadpool(
            lambda: _pool_page(request, parts, visitor, name, form=form, errors=refused)
        )
    return RedirectResponse(f"{pool_url(name)}?notice=saved", status_code=303)


async def delete_pool(
    request: Request, name: str, visitor: PoolEditor, parts: PartsDep
) -> Response:
    """Delete the pool (default_pool: refused on its page, with nothing written)."""

    def delete() -> FormErrors | None:
        try:
            parts.services.pools.delete(name, by=visitor.user.username)
        except NotFoundError:
            raise
        except SlipstreamError as refusal:
            return FormErrors.of(refusal, INPUTS)
        return None

    refused = await run_in_threadpool(delete)
    if refused is not None:
        return await run_in_threadpool(
            lambda: _pool_page(request, parts, visitor, name, errors=refused)
        )
    return RedirectResponse(f"{PATH}?notice=deleted", status_code=303)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, pools_page, methods=["GET"])
    pages.add_api_route(PATH, create_pool, methods=["POST"])
    # A pool's name may hold any character, "/" too: the longest match is the name.
    pages.add_api_route(f"{PATH}/{{name:path}}/edit", save_pool, methods=["POST"])
    pages.add_api_route(f"{PATH}/{{name:path}}/delete", delete_pool, methods=["POST"])
    pages.add_api_route(f"{PATH}/{{name:path}}", pool_page, methods=["GET"])
    return pages
