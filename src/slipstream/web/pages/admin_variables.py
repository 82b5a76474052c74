"""Admin -> Variables: the stored Variables with their values (a secret-looking key's value
shown as `***`, as the API answers it) and descriptions; a variable's page; creating,
changing and deleting one for visitors whose roles allow it (the API's permissions: create,
edit, delete on Variables). Every change goes through the same VariableService as the API and
`slipstream variables`, which audits it (the key, never a value). A masked value is never
put in a form: changing a secret-looking variable, an empty value keeps the stored one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.auth.roles import Action
from slipstream.authoring.secrets import MASK, is_sensitive
from slipstream.core.secrets import StoredVariable
from slipstream.errors import NotFoundError, SlipstreamError
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.form_errors import FormErrors
from slipstream.web.forms import form_of
from slipstream.web.nav import NavItem
from slipstream.web.paging import ListPage
from slipstream.web.sessions import allowed
from slipstream.web.visitor import Visitor

PATH = "/admin/variables"
NAV: NavItem | None = None  # the Admin entry (pages/admin.py) leads here

VariableReader = Annotated[Visitor, Depends(allowed(Action.VARIABLES_READ))]
VariableCreator = Annotated[Visitor, Depends(allowed(Action.VARIABLES_CREATE))]
VariableEditor = Annotated[Visitor, Depends(allowed(Action.VARIABLES_EDIT))]
VariableDeleter = Annotated[Visitor, Depends(allowed(Action.VARIABLES_DELETE))]

INPUTS = {"key": "key", "value": "value", "description": "description"}
NOTICES = {
    "created": "Variable created.",
    "saved": "Changes saved.",
    "deleted": "Variable deleted.",
}
# A value longer than this is cut in the list (its page shows it whole).
LISTED_CHARS = 120


def variable_url(key: str, action: str = "") -> str:
    return f"{PATH}/{quote(key, safe='')}" + (f"/{action}" if action else "")


@dataclass(frozen=True, slots=True)
class VariableView:
    """A variable as a page shows it: a secret-looking key's value is MASK, the only value
    such a page ever holds."""

    key: str
    value: str
    description: str | None
    is_masked: bool

    @classmethod
    def of(cls, variable: StoredVariable) -> VariableView:
        masked = is_sensitive(variable.key)
        value = MASK if masked else variable.val
        return cls(variable.key, value, variable.description, masked)

    @property
    def listed(self) -> str:
        if len(self.value) <= LISTED_CHARS:
            return self.value
        return self.value[:LISTED_CHARS] + "…"


@dataclass(frozen=True, slots=True)
class VariableForm:
    key: str = ""
    value: str = ""
    description: str = ""

    @classmethod
    def of(cls, form: Mapping[str, str]) -> VariableForm:
        return cls(form.get("key", ""), form.get("value", ""), form.get("description", ""))


def _render(
    request: Request,
    parts: WebParts,
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> Response:
    values = {
        "title": "Variables",
        "nav_key": "admin",
        "admin_tab": "variables",
        "variable_url": variable_url,
        "errors": FormErrors(),
        "form": VariableForm(),
        "notice": None,
        **context,
    }
    return parts.templates.render(request, name, values, status=status)


def _list_page(
    request: Request,
    parts: WebParts,
    visitor: Visitor,
    listing: ListPage,
    *,
    notice: str | None = None,
    form: VariableForm | None = None,
    errors: FormErrors | None = None,
) -> Response:
    found, total = parts.services.variables.list_page(listing.size, listing.offset)
    context = {
        "variables": [VariableView.of(v) for v in found],
        "total": total,
        "query": listing,
        "pages": listing.pages(total),
        "can_create": visitor.can(Action.VARIABLES_CREATE),
        "form": form or VariableForm(),
        "errors": errors or FormErrors(),
        "open_create": bool(errors),
        "notice": NOTICES.get(notice or ""),
    }
    status = errors.status if errors else 200
    return _render(request, parts, "admin/variables.html", context, status=status)


def variables_page(
    request: Request, visitor: VariableReader, parts: PartsDep, page: str = "", notice: str = ""
) -> Response:
    return _list_page(request, parts, visitor, ListPage.parse(PATH, page), notice=notice)


async def create_variable(request: Request, visitor: VariableCreator, parts: PartsDep) -> Response:
    form = VariableForm.of(await form_of(request))
    errors = FormErrors()
    if not form.key.strip():
        errors.add("key", "Enter a key.")

    def create() -> StoredVariable | FormErrors:
        if errors:
            return errors
        try:
            return parts.services.variables.create(
                form.key, form.value, form.description or None, by=visitor.user.username
            )
        except SlipstreamError as refusal:
            return FormErrors.of(refusal, INPUTS, conflict="key")

    made = await run_in_threadpool(create)
    if isinstance(made, FormErrors):
        refused = made
        return await run_in_threadpool(
            lambda: _list_page(request, parts, visitor, ListPage(PATH), form=form, errors=refused)
        )
    return RedirectResponse(f"{variable_url(made.key)}?notice=created", status_code=303)


def _variable_page(
    request: Request,
    parts: WebParts,
    visitor: Visitor,
    key: str,
    *,
    notice: str | None = None,
    form: VariableForm | None = None,
    errors: FormErrors | None = None,
) -> Response:
    shown = VariableView.of(parts.services.variables.get(key))
    context = {
        "title": f"Variable {shown.key}",
        "variable": shown,
        "can_edit": visitor.can(Action.VARIABLES_EDIT),
        "can_delete": visitor.can(Action.VARIABLES_DELETE),
        # A masked value never goes back into the form: its field starts empty.
        "form": form
        or VariableForm(shown.key, "" if shown.is_masked else shown.value, shown.description or ""),
        "errors": errors or FormErrors(),
        "notice": NOTICES.get(notice or ""),
    }
    status = errors.status if errors else 200
    return _render(request, parts, "admin/variable.html", context, status=status)


def variable_page(
    request: Request, key: str, visitor: VariableReader, parts: PartsDep, notice: str = ""
) -> Response:
    return _variable_page(request, parts, visitor, key, notice=notice)


async def save_variable(
    request: Request, key: str, visitor: VariableEditor, parts: PartsDep
) -> Response:
    """Change the value and description; for a secret-looking key, an empty value keeps the
    stored one (the page never had it to send back)."""
    sent = await form_of(request)
    form = VariableForm.of(sent)
    errors = FormErrors()
    if "value" not in sent:
        errors.add("value", "Send a value (empty keeps a masked one).")
    keep_value = is_sensitive(key) and form.value == ""

    def save() -> FormErrors | None:
        parts.services.variables.get(key)  # 404 before any field error
        if errors:
            return errors
        try:
            parts.services.variables.update(
                key,
                value=None if keep_value else form.value,
                description=form.description or None,
                set_description="description" in sent,
                by=visitor.user.username,
            )
        except NotFoundError:
            raise
        except SlipstreamError as refusal:
            return FormErrors.of(refusal, INPUTS)
        return None

    refused = await run_in_threadpool(save)
    if refused is not None:
        return await run_in_threadpool(
            lambda: _variable_page(request, parts, visitor, key, form=form, errors=refused)
        )
    return RedirectResponse(f"{variable_url(key)}?notice=saved", status_code=303)


def delete_variable(
    request: Request, key: str, visitor: VariableDeleter, parts: PartsDep
) -> Response:
    parts.services.variables.delete(key, by=visitor.user.username)
    return RedirectResponse(f"{PATH}?notice=deleted", status_code=303)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, variables_page, methods=["GET"])
    pages.add_api_route(PATH, create_variable, methods=["POST"])
    # A key may hold any character, "/" too: the longest match is the key.
    pages.add_api_route(f"{PATH}/{{key:path}}/edit", save_variable, methods=["POST"])
    pages.add_api_route(f"{PATH}/{{key:path}}/delete", delete_variable, methods=["POST"])
    pages.add_api_route(f"{PATH}/{{key:path}}", variable_page, methods=["GET"])
    return pages
