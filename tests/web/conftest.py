"""A real `slipstream api-server` (the API and the web UI on one port) per test module and
backend, as tests/api has, and a browser-like client that signs in through the UI's form."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.api.conftest import ApiServer, api, fresh_api, module_home

__all__ = ["ApiServer", "api", "fresh_api", "module_home"]

PASSWORD = "Web-pass-w0rd"

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = _CSRF.search(html)
    assert found is not None, f"no CSRF token on the page:\n{html[:2000]}"
    return found.group(1)


class Browser:
    """An httpx client keeping cookies, as a browser would, with the page's CSRF token."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
        self.csrf = ""

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        response = self.http.get(path, **kwargs)  # type: ignore[arg-type]
        if "csrf_token" in response.text:
            self.csrf = csrf_of(response.text)
        return response

    def post(
        self, path: str, data: dict[str, str] | None = None, **kwargs: object
    ) -> httpx.Response:
        return self.http.post(path, data=data or {}, **kwargs)  # type: ignore[arg-type]

    def sign_in(self, username: str, password: str = PASSWORD, next: str = "/") -> httpx.Response:
        page = self.get("/sign-in")
        assert page.status_code == 200, page.text
        return self.post(
            "/sign-in",
            {"username": username, "password": password, "next": next, "csrf_token": self.csrf},
        )

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def browser(api: ApiServer) -> Iterator[Browser]:
    client = Browser(api.base)
    yield client
    client.close()


SignIn = Callable[[str], Browser]


@pytest.fixture
def sign_in(api: ApiServer) -> Iterator[SignIn]:
    """sign_in("ada") -> a Browser signed in as ada (closed after the test)."""
    made: list[Browser] = []

    def make(username: str) -> Browser:
        client = Browser(api.base)
        made.append(client)
        answer = client.sign_in(username)
        assert answer.status_code == 303, answer.text
        client.get("/dags")  # picks up the session's CSRF token
        return client

    yield make
    for client in made:
        client.close()
