"""Users, for Admins: the list (roles, status, last sign-in), creating a user with a typed or a
random password (a random one is shown once), and a user's page to change their name, email
and roles, set a new password, or disable and enable them. Every change goes through the
same UserService as the API's /users routes and `slipstream users`, plus one rule of the UI's
own: no change may leave no active Admin. A new password or disabling a user signs them out
everywhere (the service ends their sessions in the same transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.auth.passwords import random_password
from slipstream.auth.roles import ROLE_DESCRIPTIONS, Action
from slipstream.core.records import User
from slipstream.errors import NotFoundError, SlipstreamError, UserAlreadyExists
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.errors import PageError
from slipstream.web.form_errors import WHOLE_FORM, FormErrors
from slipstream.web.forms import form_list, form_of
from slipstream.web.nav import NavItem
from slipstream.web.sessions import allowed
from slipstream.web.visitor import Visitor

PATH = "/security/users"
NAV: NavItem | None = None  # reached from the Security page

UserReader = Annotated[Visitor, Depends(allowed(Action.USERS_READ))]
UserEditor = Annotated[Visitor, Depends(allowed(Action.USERS_EDIT))]

# The service's field names -> this page's inputs.
INPUTS = {
    "username": "username",
    "email": "email",
    "first_name": "first_name",
    "last_name": "last_name",
    "role": "roles",
    "roles": "roles",
    "password": "password",
    "active": WHOLE_FORM,
}
# Messages a redirect after a change asks the page to show (never text from the URL itself).
NOTICES = {
    "created": "User created.",
    "saved": "Changes saved.",
    "password": "Password changed. The user was signed out everywhere.",
    "disabled": "User disabled. They were signed out everywhere and cannot sign in.",
    "enabled": "User enabled. They can sign in again.",
}
# A secret shown once: the response must not be kept by the browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Secret:
    """A password made by the server, shown on this one response and kept nowhere."""

    label: str
    value: str


def _refused(refusal: SlipstreamError) -> FormErrors:
    """A refusal beside its field; a taken username or email beside that one."""
    taken = "email" if isinstance(refusal, UserAlreadyExists) and refusal.email else "username"
    return FormErrors.of(refusal, INPUTS, conflict=taken)


def user_url(username: str, action: str = "") -> str:
    return f"{PATH}/{quote(username, safe='')}" + (f"/{action}" if action else "")


def _role_choices(parts: WebParts) -> list[tuple[str, str]]:
    """Every role with a line on what it allows: the built-in ones first, in Airflow's order."""
    roles, _ = parts.services.roles.list_roles(order_by="role_id")
    return [(r.name, ROLE_DESCRIPTIONS.get(r.name, "custom role")) for r in roles]


@dataclass(frozen=True, slots=True)
class PasswordChoice:
    """The password part of a form: a random password, or one typed twice."""

    password: str
    is_random: bool

    @classmethod
    def read(cls, form: Mapping[str, str], errors: FormErrors) -> PasswordChoice:
        if form.get("password_mode", "random") == "random":
            return cls(random_password(), True)
        typed = form.get("password", "")
        if not typed:
            errors.add("password", "Type a password, or choose a random one.")
        elif typed != form.get("password_confirm", ""):
            errors.add("password_confirm", "The two passwords differ.")
        return cls(typed, False)


def _render(
    request: Request,
    parts: WebParts,
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    secret: Secret | None = None,
) -> Response:
    values = {
        "title": "Users",
        "nav_key": "security",
        "user_url": user_url,
        "secret": secret,
        "errors": FormErrors(),
        "form": {},
        **context,
    }
    headers = NO_STORE if secret is not None else None
    return parts.templates.render(request, name, values, status=status, headers=headers)


# ---------------------------------------------------------------------------- the list


def _list_page(
    request: Request,
    parts: WebParts,
    visitor: Visitor,
    *,
    form: Mapping[str, str] | None = None,
    roles: list[str] | None = None,
    errors: FormErrors | None = None,
) -> Response:
    users, total = parts.services.users.list_users(None, order_by="username")
    context = {
        "users": users,
        "total": total,
        "can_edit": visitor.can(Action.USERS_EDIT),
        "role_choices": _role_choices(parts),
        "form": dict(form or {}),
        "chosen_roles": roles if roles is not None else [],
        "errors": errors or FormErrors(),
        "open_create": bool(errors),
    }
    status = errors.status if errors else 200
    return _render(request, parts, "security/users.html", context, status=status)


def users_page(request: Request, visitor: UserReader, parts: PartsDep) -> Response:
    return _list_page(request, parts, visitor)


async def create_user(request: Request, visitor: UserEditor, parts: PartsDep) -> Response:
    """Create a user; with a random password the new user's page shows it once."""
    form = await form_of(request)
    roles = await form_list(request, "roles")
    errors = FormErrors()
    username = form.get("username", "").strip()
    if not username:
        errors.add("username", "Enter a username.")
    if not form.get("email", "").strip():
        errors.add("email", "Enter an email address.")
    if not roles:
        errors.add("roles", "Choose at least one role.")
    choice = PasswordChoice.read(form, errors)

    def create() -> User | FormErrors:
        if errors:
            return errors
        try:
            return parts.services.users.create(
                username=username,
                email=form.get("email", "").strip(),
                first_name=form.get("first_name", "").strip(),
                last_name=form.get("last_name", "").strip(),
                password=choice.password,
                roles=roles,
                by=visitor.user.username,
            )
        except SlipstreamError as refusal:
            return _refused(refusal)

    made = await run_in_threadpool(create)
    if isinstance(made, FormErrors):
        return await run_in_threadpool(
            lambda: _list_page(request, parts, visitor, form=form, roles=roles, errors=made)
        )
    if not choice.is_random:
        return RedirectResponse(f"{user_url(made.username)}?notice=created", status_code=303)
    secret = Secret(f"Password of {made.username}", choice.password)
    return await run_in_threadpool(
        lambda: _user_page(request, parts, visitor, made.username, notice="created", secret=secret)
    )


# ---------------------------------------------------------------------------- one user


def _user_page(
    request: Request,
    parts: WebParts,
    visitor: Visitor,
    username: str,
    *,
    notice: str | None = None,
    errors: FormErrors | None = None,
    form: Mapping[str, str] | None = None,
    roles: list[str] | None = None,
    secret: Secret | None = None,
) -> Response:
    user = parts.services.users.get(username)
    context = {
        "title": f"User {user.username}",
        "user": user,
        "is_self": user.username == visitor.user.username,
        "can_edit": visitor.can(Action.USERS_EDIT),
        "role_choices": _role_choices(parts),
        "chosen_roles": list(user.roles) if roles is None else roles,
        "form": dict(form or {}),
        "errors": errors or FormErrors(),
        "notice": NOTICES.get(notice or ""),
    }
    status = errors.status if errors else 200
    return _render(request, parts, "security/user.html", context, status=status, secret=secret)


def user_page(
    request: Request, username: str, visitor: UserReader, parts: PartsDep, notice: str = ""
) -> Response:
    return _user_page(request, parts, visitor, username, notice=notice)


async def save_profile(
    request: Request, username: str, visitor: UserEditor, parts: PartsDep
) -> Response:
    """A user's name, email and roles (refused if it would leave no active Admin)."""
    form = await form_of(request)
    roles = await form_list(request, "roles")
    errors = FormErrors()
    if not form.get("email", "").strip():
        errors.add("email", "Enter an email address.")
    if not roles:
        errors.add("roles", "Choose at least one role.")

    def save() -> FormErrors | None:
        parts.services.users.get(username)  # 404 before any field error
        if errors:
            return errors
        try:
            parts.services.users.update(
                username,
                email=form.get("email", "").strip(),
                first_name=form.get("first_name", "").strip(),
                last_name=form.get("last_name", "").strip(),
                roles=roles,
                keep_an_admin=True,
                by=visitor.user.username,
            )
        except NotFoundError:
            raise
        except SlipstreamError as refusal:
            return _refused(refusal)
        return None

    refused = await run_in_threadpool(save)
    if refused is not None:
        return await run_in_threadpool(
            lambda: _user_page(
                request, parts, visitor, username, errors=refused, form=form, roles=roles
            )
        )
    return RedirectResponse(f"{user_url(username)}?notice=saved", status_code=303)


async def set_password(
    request: Request, username: str, visitor: UserEditor, parts: PartsDep
) -> Response:
    """A new password, typed or random (shown once); the user is signed out everywhere. Your
    own password is changed on your account page, which asks for the current one."""
    form = await form_of(request)
    if username == visitor.user.username:
        raise PageError(400, detail="Change your own password on your account page (/account).")
    errors = FormErrors()
    choice = PasswordChoice.read(form, errors)

    def reset() -> FormErrors | None:
        parts.services.users.get(username)
        if errors:
            return errors
        try:
            parts.services.users.reset_password(username, choice.password, by=visitor.user.username)
        except NotFoundError:
            raise
        except SlipstreamError as refusal:
            return _refused(refusal)
        return None

    refused = await run_in_threadpool(reset)
    if refused is not None:
        return await run_in_threadpool(
            lambda: _user_page(request, parts, visitor, username, errors=refused, form=form)
        )
    if not choice.is_random:
        return RedirectResponse(f"{user_url(username)}?notice=password", status_code=303)
    secret = Secret(f"New password of {username}", choice.password)
    return await run_in_threadpool(
        lambda: _user_page(request, parts, visitor, username, notice="password", secret=secret)
    )


async def set_active(
    request: Request, username: str, visitor: UserEditor, parts: PartsDep
) -> Response:
    """Disable (signs the user out everywhere) or enable a user; never yourself."""
    form = await form_of(request)
    raw = form.get("active")
    if raw not in ("true", "false"):
        raise PageError(400, detail="active must be true or false")
    active = raw == "true"
    if username == visitor.user.username and not active:
        raise PageError(400, detail="You cannot disable your own account.")

    def change() -> FormErrors | None:
        try:
            parts.services.users.set_active(
                username, active, keep_an_admin=True, by=visitor.user.username
            )
        except NotFoundError:
            raise
        except SlipstreamError as refusal:
            return _refused(refusal)
        return None

    refused = await run_in_threadpool(change)
    if refused is not None:
        return await run_in_threadpool(
            lambda: _user_page(request, parts, visitor, username, errors=refused)
        )
    notice = "enabled" if active else "disabled"
    return RedirectResponse(f"{user_url(username)}?notice={notice}", status_code=303)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, users_page, methods=["GET"])
    pages.add_api_route(PATH, create_user, methods=["POST"])
    # A username may hold any character, "/" too: the longest match is the username.
    pages.add_api_route(f"{PATH}/{{username:path}}/profile", save_profile, methods=["POST"])
    pages.add_api_route(f"{PATH}/{{username:path}}/password", set_password, methods=["POST"])
    pages.add_api_route(f"{PATH}/{{username:path}}/active", set_active, methods=["POST"])
    pages.add_api_route(f"{PATH}/{{username:path}}", user_page, methods=["GET"])
    return pages
