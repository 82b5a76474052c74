"""Cross-site request forgery protection: every POST, PUT, PATCH or DELETE to the UI must carry
a token that only a page this server rendered for this browser can know.

The token is an HMAC, under the UI's secret key, of the browser's *anchor*: its session id once
signed in, or before that a random pre-session id kept in a cookie of its own (so the sign-in
form is protected too). A forged request from another site carries the browser's cookies but
cannot read the token, which comes as the form field `csrf_token` or the header `X-CSRF-Token`
(htmx sends it from `hx-headers` on <body>). A missing or wrong token is refused with 403.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from slipstream.web.cookies import PRE_SESSION_COOKIE, SESSION_COOKIE
from slipstream.web.errors import PageError
from slipstream.web.forms import form_of

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

REFUSED = (
    "This form is out of date or did not come from this Slipstream. Reload the page and try again."
)


class CsrfSigner:
    """Makes and checks the tokens of one secret key."""

    def __init__(self, secret_key: bytes) -> None:
        if len(secret_key) < 16:
            raise ValueError("the CSRF secret key must be at least 16 bytes")
        self._key = secret_key

    def token_for(self, anchor: str) -> str:
        return hmac.new(self._key, f"csrf:{anchor}".encode(), hashlib.sha256).hexdigest()

    def is_valid(self, anchor: str | None, token: str | None) -> bool:
        if not anchor or not token:
            return False
        return hmac.compare_digest(self.token_for(anchor), token)


def anchor_of(request: Request) -> str | None:
    """What this browser's tokens are made from: its session cookie, else its pre-session
    cookie (the sign-in page sets one), else nothing (no token can be right)."""
    return request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRE_SESSION_COOKIE)


async def presented_token(request: Request) -> str | None:
    """The token a request carries: the header, else the form field."""
    header = request.headers.get(HEADER)
    if header:
        return header
    form = await form_of(request)
    return form.get(FIELD)


async def csrf_guard(request: Request) -> None:
    """An app-wide dependency: refuse a state-changing request without the right token, before
    any page code runs (so no page can forget to check)."""
    if request.method in SAFE_METHODS:
        return
    signer: CsrfSigner = request.app.state.web.csrf
    if not signer.is_valid(anchor_of(request), await presented_token(request)):
        raise PageError(403, "Request refused", REFUSED)
