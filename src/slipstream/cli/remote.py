"""Talking to a Slipstream (or Airflow 2) server over /api/v1 instead of the local database:
the `--server` options, credentials, and the one HTTP client the remote commands share.

A server's refusals become our own errors, so the CLI's one table gives them exit codes:
400 -> 2, 404 -> 3, 409 -> 4, 401/403 and an unreachable server -> 5.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import click
import httpx

from slipstream.errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SlipstreamError,
)

API = "/api/v1"
# Long polls (`?wait=`) hold a request open this much longer than the wait they asked for.
_WAIT_MARGIN = 30.0
_TIMEOUT = 60.0


class RemoteRefused(ConfigError):
    """The server cannot be reached, or refused our credentials (401/403)."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__("server", f"{server}: {reason}")


class RemoteFailed(SlipstreamError):
    """The server answered with an error we have no better name for (5xx...)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send requests and who we are; secrets stay in this object, never in argv."""

    server: str
    token: str | None = None
    user: str | None = None
    password: str | None = None

    def client(self) -> Client:
        return Client(self)


def path(*parts: str) -> str:
    """An /api/v1 path with each part percent-encoded (ids may hold `/`, `+`, `:`...)."""
    return API + "".join("/" + quote(part, safe="~") for part in parts)


def _message(response: httpx.Response) -> str:
    """The server's own words: a problem's detail (or title), 1.10's error, or the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "title", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    return response.reason_phrase


class Client:
    """A synchronous client for one server; raises our errors for the server's refusals."""

    def __init__(self, target: Target) -> None:
        self._target = target
        headers = {"User-Agent": "slipstream-cli"}
        auth: tuple[str, str] | None = None
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        elif target.user is not None:
            auth = (target.user, target.password or "")
        self._http = httpx.Client(
            base_url=target.server.rstrip("/"), headers=headers, auth=auth, timeout=_TIMEOUT
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        accept: str = "application/json",
        wait: float | None = None,
    ) -> httpx.Response:
        timeout = _TIMEOUT if wait is None else wait + _WAIT_MARGIN
        try:
            response = self._http.request(
                method,
                url,
                params=_query(params),
                json=json,
                headers={"Accept": accept},
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise RemoteRefused(self._target.server, f"cannot connect: {reason}") from None
        if response.is_success:
            return response
        message = _message(response)
        status = response.status_code
        if status in (401, 403):
            what = "not authenticated" if status == 401 else "permission denied"
            raise RemoteRefused(self._target.server, f"{status} {what}: {message}")
        if status == 400:
            raise InvalidInputError(message)
        if status == 404:
            raise NotFoundError(message)
        if status == 409:
            raise ConflictError(message)
        raise RemoteFailed(f"{method} {url}: {status} {message}")

    def get(self, url: str, **params: Any) -> Any:
        return self.request("GET", url, params=params).json()

    def pages(
        self, url: str, key: str, *, limit: int | None = None, **params: Any
    ) -> Iterator[Any]:
        """Every item of a paged collection (or the first `limit`), a page at a time."""
        offset = 0
        seen = 0
        while True:
            page_size = 100 if limit is None else min(100, limit - seen)
            body = self.get(url, limit=page_size, offset=offset, **params)
            items = body.get(key) or []
            yield from items
            seen += len(items)
            offset += len(items)
            if not items or offset >= body.get("total_entries", 0):
                return
            if limit is not None and seen >= limit:
                return


Query = list[tuple[str, str | int | float | bool | None]]


def _query(params: Mapping[str, Any] | None) -> Query | None:
    """Query pairs with None left out, lists repeated, and booleans as Airflow spells them."""
    if params is None:
        return None
    pairs: Query = []
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if item is None:
                continue
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return pairs


def target_of(
    server: str | None, token: str | None, user: str | None, password: str | None
) -> Target | None:
    """The server to talk to, or None to use the local database. A user without a password
    is asked for it."""
    if not server:
        if token or user:
            raise InvalidInputError("--token and --user need --server", field="server")
        return None
    if not server.startswith(("http://", "https://")):
        raise InvalidInputError(
            f"--server must be an http:// or https:// URL, not {server!r}", field="server"
        )
    if token:
        return Target(server, token=token)
    if user:
        if password is None:
            password = click.prompt(f"Password for {user}", hide_input=True, err=True)
        return Target(server, user=user, password=password)
    raise InvalidInputError(
        "--server needs credentials: --token (SLIPSTREAM_TOKEN) or --user (SLIPSTREAM_USER)",
        field="token",
    )


_OPTIONS = (
    click.option(
        "--server",
        envvar="SLIPSTREAM_SERVER",
        help="Talk to this API server (http://host:port) instead of the local database.",
    ),
    click.option("--token", envvar="SLIPSTREAM_TOKEN", help="API token for --server."),
    click.option("--user", envvar="SLIPSTREAM_USER", help="User name for --server."),
    click.option(
        "--password",
        envvar="SLIPSTREAM_PASSWORD",
        help="Password for --user (prefer the environment variable; prompted if absent).",
    ),
)


def remote_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add --server/--token/--user/--password; the command gets `remote: Target | None`."""

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        server: str | None,
        token: str | None,
        user: str | None,
        password: str | None,
        **kwargs: Any,
    ) -> Any:
        return func(*args, remote=target_of(server, token, user, password), **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def open_client(target: Target) -> Client:
    """A client closed when the command ends."""
    client = target.client()
    click.get_current_context().call_on_close(client.close)
    return client
