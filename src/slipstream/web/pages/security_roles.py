"""Roles: the list with what each allows and how many users hold it; a built-in role's
permissions (read-only); creating, editing (renaming, and its permissions: actions on
resources, and access to all DAGs, some DAGs or DAGs with a tag) and deleting a custom role.
Every change goes through the same RoleService as the API's /roles routes and `slipstream
roles`; deleting a role takes it from its holders (as Airflow does), which the page says
before it asks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.auth.permissions import DAG_PREFIX, RESOURCES, TAG_PREFIX, VERBS
from slipstream.auth.roles import ROLE_DESCRIPTIONS, Action
from slipstream.core.records import Role
from slipstream.errors import NotFoundError, SlipstreamError
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.form_errors import WHOLE_FORM, FormErrors
from slipstream.web.forms import form_list, form_of
from slipstream.web.nav import NavItem
from slipstream.web.sessions import allowed
from slipstream.web.visitor import Visitor

PATH = "/security/roles"
NAV: NavItem | None = None  # reached from the Security page

RoleReader = Annotated[Visitor, Depends(allowed(Action.ROLES_READ))]
RoleEditor = Annotated[Visitor, Depends(allowed(Action.ROLES_EDIT))]

Pair = tuple[str, str]

# Kinds of DAG access a row of the form may give, with the resource prefix of each.
SCOPE_KINDS = {"dag": DAG_PREFIX, "tag": TAG_PREFIX}
SCOPE_LABELS = {"dag": "DAG id", "tag": "DAG tag"}
VERB_LABELS = {
    "can_read": "read",
    "can_edit": "edit",
    "can_create": "create",
    "can_delete": "delete",
}
BLANK_SCOPE_ROWS = 3
MAX_SCOPE_ROWS = 500
INPUTS = {"name": "name", "action": "perms", "resource": "perms", "role_name": WHOLE_FORM}
NOTICES = {"created": "Role created.", "saved": "Changes saved.", "deleted": "Role deleted."}


def role_url(name: str, action: str = "") -> str:
    return f"{PATH}/{quote(name, safe='')}" + (f"/{action}" if action else "")


@dataclass(slots=True)
class ScopeRow:
    """One row of the form's DAG access: a DAG id or a tag, and the actions it gives on it."""

    kind: str = "dag"
    name: str = ""
    verbs: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RoleForm:
    """A role as the form shows it: a name, resource permissions, and DAG access rows."""

    name: str
    resource_pairs: frozenset[Pair]
    scopes: list[ScopeRow]

    @classmethod
    def of(cls, role: Role | None) -> RoleForm:
        pairs = role.permissions if role is not None else ()
        rows: dict[tuple[str, str], ScopeRow] = {}
        plain: set[Pair] = set()
        for verb, resource in pairs:
            for kind, prefix in SCOPE_KINDS.items():
                if resource.startswith(prefix):
                    name = resource[len(prefix) :]
                    row = rows.setdefault((kind, name), ScopeRow(kind, name))
                    row.verbs.append(verb)
                    break
            else:
                plain.add((verb, resource))
        return cls(role.name if role else "", frozenset(plain), list(rows.values()))

    @classmethod
    async def read(cls, request: Request, errors: FormErrors) -> tuple[RoleForm, list[Pair]]:
        """The form as sent, and the pairs it asks for (errors noted beside their rows)."""
        form = await form_of(request)
        plain: set[Pair] = set()
        for raw in await form_list(request, "perm"):
            verb, _, resource = raw.partition(" ")
            plain.add((verb, resource))  # the service refuses what is not a permission
        scopes: list[ScopeRow] = []
        pairs = sorted(plain)
        for n in range(MAX_SCOPE_ROWS):
            if f"scope-{n}-name" not in form:
                break
            row = ScopeRow(
                form.get(f"scope-{n}-kind", "dag"),
                form.get(f"scope-{n}-name", "").strip(),
                await form_list(request, f"scope-{n}-verb"),
            )
            if not row.name and not row.verbs:
                continue  # a blank row: shown again only as one of the blank rows
            # Errors name the row as the page shows it again: blank rows left out.
            where = f"scope-{len(scopes)}"
            scopes.append(row)
            if row.kind not in SCOPE_KINDS:
                errors.add(where, "Choose DAG id or DAG tag.")
            elif not row.name:
                errors.add(where, f"Enter a {SCOPE_LABELS[row.kind]}, or clear this row.")
            elif not row.verbs:
                errors.add(where, "Choose at least one action on it.")
            else:
                pairs.extend((verb, SCOPE_KINDS[row.kind] + row.name) for verb in row.verbs)
        name = form.get("name", "")
        if not name.strip():
            errors.add("name", "Enter a role name.")
        return cls(name, frozenset(plain), scopes), list(dict.fromkeys(pairs))

    def with_blank_rows(self) -> list[ScopeRow]:
        return [*self.scopes, *(ScopeRow() for _ in range(BLANK_SCOPE_ROWS))]


def _holders(parts: WebParts) -> Counter[str]:
    users, _ = parts.services.users.list_users(None)
    return Counter(role for user in users for role in user.roles)


def _render(
    request: Request,
    parts: WebParts,
    name: str,
    context: Mapping[str, Any],
    status: int = 200,
) -> Response:
    values = {
        "title": "Roles",
        "nav_key": "security",
        "security_tab": "roles",
        "role_url": role_url,
        "resources": RESOURCES,
        "verbs": VERBS,
        "verb_labels": VERB_LABELS,
        "scope_labels": SCOPE_LABELS,
        "errors": FormErrors(),
        **context,
    }
    return parts.templates.render(request, name, values, status=status)


def _grouped(pairs: Iterable[Pair]) -> list[tuple[str, list[str]]]:
    """A role's pairs as resource -> its actions, for the list."""
    by_resource: dict[str, list[str]] = {}
    for verb, resource in sorted(pairs, key=lambda p: (p[1], VERBS.index(p[0]))):
        by_resource.setdefault(resource, []).append(VERB_LABELS.get(verb, verb))
    return list(by_resource.items())


# ---------------------------------------------------------------------------- the list


def _list_page(
    request: Request,
    parts: WebParts,
    visitor: Visitor,
    *,
    notice: str = "",
    form: RoleForm | None = None,
    errors: FormErrors | None = None,
) -> Response:
    roles, total = parts.services.roles.list_roles(order_by="role_id")
    context = {
        "roles": roles,
        "total": total,
        "holders": _holders(parts),
        "descriptions": ROLE_DESCRIPTIONS,
        "grouped": _grouped,
        "can_edit": visitor.can(Action.ROLES_EDIT),
        "form": form or RoleForm.of(None),
        "errors": errors or FormErrors(),
        "open_create": bool(errors),
        "notice": NOTICES.get(notice),
    }
    return _render(request, parts, "security/roles.html", context, errors.status if errors else 200)


def roles_page(
    request: Request, visitor: RoleReader, parts: PartsDep, notice: str = ""
) -> Response:
    return _list_page(request, parts, visitor, notice=notice)


async def create_role(request: Request, visitor: RoleEditor, parts: PartsDep) -> Response:
    errors = FormErrors()
    form, pairs = await RoleForm.read(request, errors)

    def create() -> FormErrors | None:
        if errors:
            return errors
        try:
            parts.services.roles.create(form.name, pairs, by=visitor.user.username)
        except SlipstreamError as refusal:
            return FormErrors.of(refusal, INPUTS, conflict="name")
        return None

    refused = await run_in_threadpool(create)
    if refused is not None:
        return await run_in_threadpool(
            lambda: _list_page(request, parts, visitor, form=form, errors=refused)
        )
    return RedirectResponse(f"{role_url(form.name)}?notice=created", status_code=303)


# ---------------------------------------------------------------------------- one role


def _role_page(
    request: Request,
    parts: WebParts,
    visitor: Visitor,
    name: str,
    *,
    notice: str = "",
    form: RoleForm | None = None,
    errors: FormErrors | None = None,
) -> Response:
    role = parts.services.roles.get(name)
    context = {
        "title": f"Role {role.name}",
        "role": role,
        "holders": _holders(parts)[role.name],
        "description": ROLE_DESCRIPTIONS.get(role.name),
        "grouped": _grouped,
        "can_edit": visitor.can(Action.ROLES_EDIT) and not role.is_builtin,
        "form": form or RoleForm.of(role),
        "errors": errors or FormErrors(),
        "notice": NOTICES.get(notice),
    }
    return _render(request, parts, "security/role.html", context, errors.status if errors else 200)


def role_page(
    request: Request, name: str, visitor: RoleReader, parts: PartsDep, notice: str = ""
) -> Response:
    return _role_page(request, parts, visitor, name, notice=notice)


async def save_role(request: Request, name: str, visitor: RoleEditor, parts: PartsDep) -> Response:
    """Rename a custom role and/or replace its permissions, at once."""
    errors = FormErrors()
    form, pairs = await RoleForm.read(request, errors)

    def save() -> FormErrors | None:
        parts.services.roles.check_changeable(name)  # 404, or 400 for a built-in role
        if errors:
            return errors
        try:
            parts.services.roles.update(
                name, new_name=form.name, pairs=pairs, by=visitor.user.username
            )
        except NotFoundError:
            raise
        except SlipstreamError as refusal:
            return FormErrors.of(refusal, INPUTS, conflict="name")
        return None

    refused = await run_in_threadpool(save)
    if refused is not None:
        return await run_in_threadpool(
            lambda: _role_page(request, parts, visitor, name, form=form, errors=refused)
        )
    return RedirectResponse(f"{role_url(form.name)}?notice=saved", status_code=303)


def delete_role(request: Request, name: str, visitor: RoleEditor, parts: PartsDep) -> Response:
    """Delete a custom role; its holders lose it (the page said how many before asking)."""
    parts.services.roles.delete(name, by=visitor.user.username)
    return RedirectResponse(f"{PATH}?notice=deleted", status_code=303)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, roles_page, methods=["GET"])
    pages.add_api_route(PATH, create_role, methods=["POST"])
    # A role's name may hold any character, "/" too: the longest match is the name.
    pages.add_api_route(f"{PATH}/{{name:path}}/delete", delete_role, methods=["POST"])
    pages.add_api_route(f"{PATH}/{{name:path}}/edit", save_role, methods=["POST"])
    pages.add_api_route(f"{PATH}/{{name:path}}", role_page, methods=["GET"])
    return pages
