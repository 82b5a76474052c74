"""An ASGI middleware refusing request bodies over a size limit with 413, before any route
reads them, so a huge body can neither exhaust memory nor reach the database."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, *, experimental_prefix: str) -> None:
        self._app = app
        self._max = max_bytes
        self._experimental_prefix = experimental_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self._max:
                    await self._refuse(scope, send)
                    return
        # Read the whole body first (at most the limit) and replay it to the app.
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees a disconnect on its next receive
            body = message.get("body", b"")
            total += len(body)
            if total > self._max:
                await self._refuse(scope, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self._app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        message = f"request body is larger than the limit of {self._max} bytes"
        if str(scope.get("path", "")).startswith(self._experimental_prefix):
            payload: dict[str, object] = {"error": message}
            content_type = b"application/json"
        else:
            payload = {
                "detail": message,
                "status": 413,
                "title": "Request Entity Too Large",
                "type": "about:blank",
            }
            content_type = b"application/problem+json"
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
