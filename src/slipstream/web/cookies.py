"""The UI's cookies: their names and how they are set. Both are HttpOnly (no script reads
them), SameSite=Lax (not sent on cross-site POSTs), and Secure when the request came over
HTTPS (uvicorn applies X-Forwarded-Proto from trusted proxies to the URL's scheme)."""

from __future__ import annotations

from fastapi import Request, Response

SESSION_COOKIE = "slipstream_session"
# Before sign-in: the anchor of the sign-in form's CSRF token (see csrf.py).
PRE_SESSION_COOKIE = "slipstream_pre_session"
PRE_SESSION_SECONDS = 24 * 3600


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )
