"""Who is calling the API and what they may do: authentication (HTTP Basic or a bearer token)
and the permission checks routes make, answered as Airflow 2 does (401 problem JSON with
`WWW-Authenticate: Basic` for missing or wrong credentials, 403 naming the missing permission,
404 for a DAG the caller may not see). Password sign-ins (Basic here and on the experimental
API, and POST /auth/token) all pass the one failed-login throttle: 429 with `Retry-After` while
locked. Bearer tokens are not throttled: they are 256 random bits, beyond guessing."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from slipstream.api.errors import ApiError
from slipstream.auth.permissions import (
    BUILTIN_ROLE_PAIRS,
    CAN_READ,
    NEEDS,
    DagScope,
    Grants,
    grants_of,
)
from slipstream.auth.roles import Action
from slipstream.auth.throttle import LoginThrottle
from slipstream.core.records import User
from slipstream.errors import DagNotFound, SignInLocked
from slipstream.services.sign_in_gate import SignInGate

log = logging.getLogger(__name__)

Pairs = Mapping[str, frozenset[tuple[str, str]]]


class PasswordChecker(Protocol):
    def authenticate(self, username: str, password: str) -> User | None: ...

    def peek(self, username: str, password: str) -> User | None:
        """A user verified a moment ago, without blocking; None: call `authenticate`."""
        ...


class TokenChecker(Protocol):
    def authenticate_token(self, token: str) -> User | None: ...

    def peek_token(self, token: str) -> User | None:
        """A token's owner found a moment ago, without blocking; None: call
        `authenticate_token`."""
        ...


def basic_credentials(header: str) -> tuple[str, str] | None:
    """`Basic <base64 of user:password>` split at the first colon, or None if malformed."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def bearer_token(header: str) -> str | None:
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def client_address(request: Request) -> str | None:
    """The caller's address (uvicorn has already applied X-Forwarded-For from trusted
    proxies), or None when the server does not know it."""
    return request.client.host if request.client is not None else None


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user and everything their roles grant."""

    user: User
    grants: Grants

    def require(self, action: Action) -> None:
        """403 unless the roles hold the resource permission for `action`."""
        if not self.grants.allows(action):
            raise ApiError(
                403,
                f"user {self.user.username!r} lacks the permission {NEEDS[action]}",
            )

    def check_dag(self, action: Action, dag_id: str, tags: Iterable[str]) -> None:
        """404 if the user may not see the DAG at all, 403 if they may not do `action` on it."""
        tags = list(tags)
        if not self.grants.scope_for(Action.DAGS_READ).covers(dag_id, tags):
            raise DagNotFound(dag_id)
        self.require(action)
        need = NEEDS[action]
        if need.dag_verb is not None and not self.grants.dag_scope(need.dag_verb).covers(
            dag_id, tags
        ):
            raise ApiError(
                403,
                f"user {self.user.username!r} lacks the permission {need.dag_verb} on DAG:{dag_id}",
            )

    def scope_for(self, action: Action) -> DagScope:
        """The DAGs a listing for `action` may show."""
        return self.grants.scope_for(action)

    def sees_every_dag(self, action: Action) -> bool:
        """Whether the user may see, and do `action` on, every DAG: then `check_dag` needs no
        DAG's tags, and a route may skip looking them up."""
        need = NEEDS[action]
        if not self.grants.dag_scope(CAN_READ).everything:
            return False
        return need.dag_verb is None or self.grants.dag_scope(need.dag_verb).everything


class Security:
    """Authenticates requests and builds their Principal. One per app."""

    def __init__(
        self,
        passwords: PasswordChecker,
        *,
        tokens: TokenChecker | None = None,
        role_pairs: Callable[[], Pairs] | None = None,
        peek_role_pairs: Callable[[], Pairs | None] | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._passwords = passwords
        self._tokens = tokens
        self._role_pairs = role_pairs or (lambda: BUILTIN_ROLE_PAIRS)
        # Roles as cached a moment ago, or None when reading them needs the database.
        self._peek_role_pairs = peek_role_pairs or (
            (lambda: BUILTIN_ROLE_PAIRS) if role_pairs is None else (lambda: None)
        )
        self._throttle = throttle
        self._gate = SignInGate(passwords.authenticate, throttle)

    def sign_in(self, username: str, password: str, address: str | None) -> User | None:
        """The active user with these credentials, or None (counted as a failure and logged,
        without the password). 429 while the username or the address is locked, before the
        password is checked: right or wrong, it is not looked at."""
        try:
            return self._gate.sign_in(username, password, address)
        except SignInLocked as exc:
            raise ApiError(
                429,
                f"too many failed sign-ins; try again in {exc.retry_after} seconds",
                headers={"Retry-After": str(exc.retry_after)},
            ) from None

    def user_of(self, request: Request) -> User | None:
        """The active user the request's credentials name, or None (no credentials, or wrong
        ones); 429 while a password sign-in is locked."""
        header = request.headers.get("Authorization")
        if header is None:
            return None
        user: User | None = None
        credentials = basic_credentials(header)
        if credentials is not None:
            user = self.sign_in(*credentials, address=client_address(request))
        elif self._tokens is not None:
            token = bearer_token(header)
            if token is not None:
                user = self._tokens.authenticate_token(token)
                if user is None:
                    log.info("refused a bearer token from %s", client_address(request))
        return user if user is not None and user.active else None

    def _peek(self, request: Request) -> User | None:
        """The caller if their credentials were checked a moment ago (memory only, no I/O),
        else None. The failed-login lock still applies: a locked name gets nothing here."""
        header = request.headers.get("Authorization")
        if header is None:
            return None
        user: User | None = None
        credentials = basic_credentials(header)
        if credentials is not None:
            locked = self._throttle is not None and (
                self._throttle.retry_after(credentials[0], client_address(request)) is not None
            )
            user = None if locked else self._passwords.peek(*credentials)
        elif self._tokens is not None:
            token = bearer_token(header)
            user = self._tokens.peek_token(token) if token is not None else None
        return user if user is not None and user.active else None

    def _principal_or_none(self, request: Request) -> Principal | None:
        user = self.user_of(request)
        return None if user is None else self.principal_of(user)

    async def principal_or_none(self, request: Request) -> Principal | None:
        """The caller, or None for missing or wrong credentials, for async code: answered on
        the event loop when the credentials and roles were read a moment ago (the common
        case), else in the threadpool (a database read, or a deliberately slow password hash,
        must not hold up the loop)."""
        user = self._peek(request)
        pairs = self._peek_role_pairs() if user is not None else None
        if user is None or pairs is None:
            return await run_in_threadpool(self._principal_or_none, request)
        return Principal(user, grants_of(user.roles, pairs))

    async def principal_async(self, request: Request) -> Principal:
        """`principal` for async code, as `principal_or_none`."""
        principal = await self.principal_or_none(request)
        if principal is None:
            raise ApiError(401, None, headers={"WWW-Authenticate": "Basic"})
        return principal

    def principal_of(self, user: User) -> Principal:
        """What `user`'s roles grant, now."""
        return Principal(user, grants_of(user.roles, self._role_pairs()))
