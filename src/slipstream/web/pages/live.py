"""`GET /ui/events`: the one server-sent events stream a browser tab holds (static/live.js
opens it), telling the page which of its topics changed, and carrying the lines of the one
try's log the page follows, if any.

Topics (space-separated in `topics`): `dags`, `dag:<dag_id>`, `run:<dag_id>/<run_id>` and
`log:<dag_id>/<run_id>/<task_id>/<map_index>/<try>`. Each is checked with the visitor's rights
when the stream opens (a DAG they may not see is 404, a missing permission 403), so a stream
never carries a DAG the visitor cannot read. `since` is the server's time (ms since the epoch)
the page was rendered at, or of the last event the tab received, so nothing between is lost;
`log_offset` is how much of the log the page already shows.

Events: `hello` (the server's time), `change` (topics that changed, the server's time),
`log` (text appended to the followed log, with the new offset as its id), `log-end` (the try
finished: its state), `bye` (the stream ends: signed-out, reconnect, stopping); and a comment
every HEARTBEAT_SECONDS so proxies keep a quiet connection open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.auth.roles import Action
from slipstream.errors import DagNotFound
from slipstream.web.cookies import SESSION_COOKIE
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.errors import PageError
from slipstream.web.event_stream import HEADERS, EventStreamResponse, comment, event, retry
from slipstream.web.live import DAGS_TOPIC, Bye, Changed, LiveHub, Subscription, run_topic
from slipstream.web.log_tail import LogKey, LogTail
from slipstream.web.nav import NavItem
from slipstream.web.sessions import visitor_or_none
from slipstream.web.visitor import Visitor

PATH = "/ui/events"
NAV: NavItem | None = None

HEARTBEAT_SECONDS = 15.0
TAIL_INTERVAL = 0.25
# While following a log, the try's state is also read this often, in case its run's change
# was missed (the watcher's window passed while the database was busy).
TAIL_STATE_CHECK_SECONDS = 15.0
MAX_TOPICS = 50
RECONNECT_MS = 2000


def _checked_topics(parts: WebParts, visitor: Visitor, raw: str) -> tuple[set[str], LogKey | None]:
    """The topics, each allowed to the visitor; else 400 (malformed), 404 (a DAG they may
    not see or that does not exist) or 403 (a permission they lack)."""
    topics = set(raw.split())
    if len(topics) > MAX_TOPICS:
        raise PageError(400, detail=f"topics: at most {MAX_TOPICS}")
    log_key: LogKey | None = None
    needs: dict[str, Action] = {}
    for topic in topics:
        if topic == DAGS_TOPIC:
            if not visitor.can(Action.DAGS_READ):
                raise PageError(403, detail="Your roles do not allow reading DAGs.")
        elif topic.startswith("dag:") and len(topic) > 4:
            needs.setdefault(topic[4:], Action.RUNS_READ)
        elif topic.startswith("run:") and "/" in topic and all(topic[4:].split("/", 1)):
            needs.setdefault(topic[4:].split("/", 1)[0], Action.RUNS_READ)
        elif (key := LogKey.parse(topic)) is not None:
            if log_key is not None:
                raise PageError(400, detail="topics: at most one log topic per stream")
            log_key = key
            needs[key.dag_id] = Action.LOGS_READ
        else:
            raise PageError(400, detail=f"topics: unknown topic {topic!r}")
    for dag_id, action in needs.items():
        dag = parts.services.dags.get(dag_id)  # DagNotFound: 404
        if not visitor.sees_dag(dag_id, dag.tags):
            raise DagNotFound(dag_id)
        if not visitor.can_on_dag(action, dag_id, dag.tags):
            raise PageError(403, detail=f"Your roles do not allow this on {dag_id}.")
    if log_key is not None:
        # The followed try's run: the watcher says when to look whether the try finished.
        topics.add(run_topic(log_key.dag_id, log_key.run_id))
    return topics, log_key


def _whole_number(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise PageError(400, detail=f"{name} must be a whole number") from None
    if number < 0:
        raise PageError(400, detail=f"{name} must be 0 or more")
    return number


async def events(
    request: Request,
    parts: PartsDep,
    topics: Annotated[str, Query()] = "",
    since: Annotated[str | None, Query()] = None,
    log_offset: Annotated[str | None, Query()] = None,
) -> Response:
    hub = parts.live
    visitor = await run_in_threadpool(visitor_or_none, request, parts)
    if visitor is None:
        # Not a redirect: EventSource cannot follow one to a page, and must stop retrying.
        return PlainTextResponse("Sign in to follow live updates.", status_code=401)
    since_ms = _whole_number("since", since)
    offset = _whole_number("log_offset", log_offset) or 0
    wanted, log_key = await run_in_threadpool(_checked_topics, parts, visitor, topics)
    if hub.is_closed:
        return PlainTextResponse("The server is stopping.", status_code=503)
    now = parts.services.clock.now()
    subscription = Subscription(
        session_id=request.cookies.get(SESSION_COOKIE, ""),
        visitor=visitor,
        topics=frozenset(wanted),
        since=now if since_ms is None else datetime.fromtimestamp(since_ms / 1000, UTC),
    )
    tail = None
    if log_key is not None:
        tail = LogTail(log_key, offset, parts.services.logs, parts.services.runs)
    hub.subscribe(subscription)
    return EventStreamResponse(
        _stream(hub, subscription, tail, now), media_type="text/event-stream", headers=HEADERS
    )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _stream(
    hub: LiveHub, subscription: Subscription, tail: LogTail | None, now: datetime
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    try:
        yield retry(RECONNECT_MS)
        yield event("hello", {"at": _ms(now)})
        last_sent = loop.time()
        following = tail is not None
        check_state_at = loop.time()  # at once: the try may be over already
        while True:
            timeout = TAIL_INTERVAL if following else HEARTBEAT_SECONDS
            message = None
            with contextlib.suppress(TimeoutError):
                message = await asyncio.wait_for(subscription.queue.get(), timeout)
            if isinstance(message, Bye):
                yield event("bye", {"reason": message.reason})
                return
            if isinstance(message, Changed):
                shown = sorted(message.topics & subscription.topics)
                if tail is not None and tail.run_topic in message.topics:
                    check_state_at = loop.time()
                if shown:
                    yield event("change", {"topics": shown, "at": _ms(message.at)})
                    last_sent = loop.time()
            if tail is not None and following:
                async for chunk in _log_chunks(tail):
                    yield chunk
                    last_sent = loop.time()
                if loop.time() >= check_state_at:
                    check_state_at = loop.time() + TAIL_STATE_CHECK_SECONDS
                    state = await run_in_threadpool(tail.state)
                    if state is not None:
                        # What the try wrote before it ended, then the end.
                        async for chunk in _log_chunks(tail):
                            yield chunk
                        yield event("log-end", {"topic": tail.key.topic, "state": state.value})
                        last_sent = loop.time()
                        following = False
            if loop.time() - last_sent >= HEARTBEAT_SECONDS:
                yield comment("keep-alive")
                last_sent = loop.time()
    finally:
        hub.unsubscribe(subscription)


async def _log_chunks(tail: LogTail) -> AsyncIterator[str]:
    while tail.has_more():  # a stat: cheap enough for the event loop
        text = await run_in_threadpool(tail.read)
        if not text:
            return
        yield event(
            "log",
            {"topic": tail.key.topic, "text": text, "offset": tail.offset},
            event_id=str(tail.offset),
        )


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route(PATH, events, methods=["GET"])
    return pages
