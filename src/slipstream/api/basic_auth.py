"""HTTP Basic for the experimental API, as Airflow 1.10's password_auth answered: no
credentials 401 (`WWW-Authenticate: Basic`), bad ones 403 `Forbidden`; then the user's roles
must allow the route's action, else 403 `{"error": ...}` naming the missing permission."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Protocol

from fastapi import Request

from slipstream.api.errors import ApiError
from slipstream.auth.roles import Action, allowed
from slipstream.core.records import User


class Authenticator(Protocol):
    def authenticate(self, username: str, password: str) -> User | None: ...


def _credentials(header: str) -> tuple[str, str] | None:
    # Like 1.10: whatever follows the first space, base64, split at the first colon.
    _, _, encoded = header.strip().partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def basic_user(request: Request, users: Authenticator) -> User:
    """The signed-in user, or the 401/403 answer 1.10's clients expect."""
    header = request.headers.get("Authorization")
    if header is None:
        raise ApiError(401, "Unauthorized", plain=True, headers={"WWW-Authenticate": "Basic"})
    credentials = _credentials(header)
    user = users.authenticate(*credentials) if credentials is not None else None
    if user is None or not user.active:
        raise ApiError(403, "Forbidden", plain=True)
    return user


def requires(users: Authenticator, action: Action) -> Callable[[Request], User]:
    """A route dependency: a signed-in user whose roles allow `action`."""

    def dependency(request: Request) -> User:
        user = basic_user(request, users)
        if not allowed(user.roles, action):
            raise ApiError(
                403,
                f"Forbidden: user {user.username!r} lacks the {action.value} permission",
            )
        return user

    return dependency
