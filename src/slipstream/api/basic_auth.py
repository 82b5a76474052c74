"""Authentication for the experimental API, as Airflow 1.10's password_auth answered: no
credentials 401 (`WWW-Authenticate: Basic`), bad ones 403 `Forbidden`; then the user's roles
must allow the route's action, else 403 `{"error": ...}` naming the missing permission.

Credentials are checked by the same Security as /api/v1 (so Bearer tokens work here too, and
password failures share one throttle), and permissions come from the same Principal (so roles
limited to some DAGs hold here as well).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from slipstream.api.deps import security_of
from slipstream.api.errors import ApiError
from slipstream.api.security import Principal
from slipstream.auth.permissions import NEEDS
from slipstream.auth.roles import Action


async def signed_in(request: Request) -> Principal:
    """A route dependency: the caller, or the 401/403 answer 1.10's clients expect."""
    if request.headers.get("Authorization") is None:
        raise ApiError(401, "Unauthorized", plain=True, headers={"WWW-Authenticate": "Basic"})
    security = await security_of(request)
    principal = await security.principal_or_none(request)
    if principal is None:
        raise ApiError(403, "Forbidden", plain=True)
    return principal


def requires(action: Action) -> Callable[[Request], Awaitable[Principal]]:
    """A route dependency: a signed-in caller whose roles hold the permission for `action`.
    Routes about one DAG still check that DAG once they know it."""

    async def dependency(request: Request) -> Principal:
        principal = await signed_in(request)
        if not principal.grants.allows(action):
            raise ApiError(
                403,
                f"Forbidden: user {principal.user.username!r} lacks the {action.value}"
                f" permission ({NEEDS[action]})",
            )
        return principal

    return dependency
