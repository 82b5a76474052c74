"""Server-sent events on the wire: how one event or a keep-alive comment is written, and the
streaming response that stops as soon as the browser goes away (rather than at its next write,
which for a quiet stream could be a heartbeat away)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

EVENT_STREAM = "text/event-stream"
# Proxies must neither cache nor buffer the stream (X-Accel-Buffering is nginx's switch).
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(name: str, data: Any, *, event_id: str | None = None) -> str:
    """One event whose data is `data` as JSON (JSON has no raw newlines, so one data line)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def comment(text: str) -> str:
    """A line browsers ignore: it keeps proxies from closing a quiet connection."""
    return f": {text}\n\n"


def retry(milliseconds: int) -> str:
    return f"retry: {milliseconds}\n\n"


class EventStreamResponse(StreamingResponse):
    """A StreamingResponse that also listens for the client's disconnect, whatever the ASGI
    version the server speaks, and stops the stream then."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def until_done(work: Any) -> None:
                await work()
                group.cancel_scope.cancel()

            group.start_soon(until_done, partial(self.stream_response, send))
            await until_done(partial(self.listen_for_disconnect, receive))
