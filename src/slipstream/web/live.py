"""Live updates: one change watcher per server process, fanning the runs that changed out to
the browser tabs subscribed to them (each tab holds one server-sent events stream,
web/pages/live.py).

The watcher is an asyncio task that runs only while at least one tab is subscribed. Every
`poll_interval` seconds it asks the database one indexed question through a ChangeFeed
(services/changes.py: which runs and task instances were written lately), maps each changed
run to its topics (`dags`, `dag:<dag_id>`, `run:<dag_id>/<run_id>`) and hands each subscriber
the topics it asked for, so the cost is one small query per interval per process, whatever
the number of tabs. Every `session_check` seconds it also checks, in one read, that each
subscriber's session is still live and its roles unchanged: a stream ends when its visitor
signs out, expires, is disabled or changes roles (the browser reconnects with fresh rights).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool

from slipstream.clock import Clock
from slipstream.errors import DatabaseUnavailable
from slipstream.services.changes import ChangeFeed, ChangeService, RunChange
from slipstream.services.web_sessions import WebSessionService
from slipstream.web.visitor import Visitor

log = logging.getLogger(__name__)

DAGS_TOPIC = "dags"
POLL_INTERVAL = 0.25
SESSION_CHECK_SECONDS = 15.0
# Changes kept to replay to a tab that (re)connects after the page it shows was rendered.
REPLAY_SECONDS = 60.0


def dag_topic(dag_id: str) -> str:
    return f"dag:{dag_id}"


def run_topic(dag_id: str, run_id: str) -> str:
    return f"run:{dag_id}/{run_id}"


def htmx_event(topic: str) -> str:
    """The DOM event name (after "live:") that live.js also dispatches `topic` under, for
    hx-trigger: htmx reads a "/" there as a quote, so it becomes ":"."""
    return topic.replace("/", ":")


@dataclass(frozen=True, slots=True)
class Changed:
    """Topics that changed, and the server's time of the look that saw them."""

    topics: frozenset[str]
    at: datetime


@dataclass(frozen=True, slots=True)
class Bye:
    """The stream ends: `reason` is signed-out, reconnect (rights changed) or stopping."""

    reason: str


Message = Changed | Bye


@dataclass(eq=False)
class Subscription:
    """One tab's stream: its visitor (for the `dags` topic's per-DAG check), the topics it
    may hear, and what is waiting to be sent to it."""

    session_id: str
    visitor: Visitor
    topics: frozenset[str]
    since: datetime
    queue: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)

    def offer(self, changes: Iterable[RunChange], at: datetime) -> None:
        wanted = set()
        for change in changes:
            if change.seen_at <= self.since:
                continue  # the page was rendered after this change: it shows it already
            for topic in (dag_topic(change.dag_id), run_topic(change.dag_id, change.run_id)):
                if topic in self.topics:
                    wanted.add(topic)
            if DAGS_TOPIC in self.topics and self.visitor.sees_dag(change.dag_id, change.dag_tags):
                wanted.add(DAGS_TOPIC)
        if wanted:
            self.queue.put_nowait(Changed(frozenset(wanted), at))

    def end(self, reason: str) -> None:
        self.queue.put_nowait(Bye(reason))


class LiveHub:
    """The process's subscribers and its one change watcher (per web app)."""

    def __init__(
        self,
        changes: ChangeService,
        sessions: WebSessionService,
        clock: Clock,
        *,
        poll_interval: float = POLL_INTERVAL,
        session_check: float = SESSION_CHECK_SECONDS,
    ) -> None:
        self._changes = changes
        self._clock = clock
        self._sessions = sessions
        self._poll_interval = poll_interval
        self._session_check = session_check
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._recent: deque[RunChange] = deque()
        # From when on the watcher has seen every change (None while it is not running).
        self._covered_from: datetime | None = None
        self._closed = False
        # Set while the database cannot be reached: the watcher says so once, not every look.
        self._unreachable = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def is_watching(self) -> bool:
        return self._task is not None

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def is_closed(self) -> bool:
        return self._closed

    def subscribe(self, subscription: Subscription) -> bool:
        """Add a tab; False if the server is stopping. Starts the watcher if it sleeps, and
        says at once what changed since the tab's page was rendered, if the watcher knows
        (else, the tab is told that everything may have: see `Subscription.since`)."""
        if self._closed:
            return False
        self._loop = asyncio.get_running_loop()
        self._subscribers.add(subscription)
        now = self._clock.now()
        # A watcher that starts now will see the last window's changes on its first look.
        covered = self._covered_from or now - self._changes.window
        if covered <= subscription.since:
            subscription.offer(self._recent, now)
        else:
            # Rendered before what the watcher saw: anything on the page may have changed.
            subscription.queue.put_nowait(Changed(subscription.topics, now))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())
        return True

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def end_session(self, session_id: str) -> None:
        """The session signed out here: its streams end now (other processes notice at their
        next session check). Safe to call from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._end_session, session_id)

    def _end_session(self, session_id: str) -> None:
        for subscription in [s for s in self._subscribers if s.session_id == session_id]:
            subscription.end("signed-out")

    def close(self) -> None:
        """The server is stopping: every stream ends now, and no new one starts."""
        self._closed = True
        for subscription in list(self._subscribers):
            subscription.end("stopping")
        self._wake.set()

    async def _watch(self) -> None:
        feed = self._changes.feed()
        started = self._clock.now()
        next_session_check = asyncio.get_running_loop().time() + self._session_check
        try:
            while self._subscribers and not self._closed:
                await self._look(feed, started)
                if asyncio.get_running_loop().time() >= next_session_check:
                    next_session_check += self._session_check
                    await self._check_sessions()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
        finally:
            self._task = None
            self._covered_from = None
            self._recent.clear()

    async def _look(self, feed: ChangeFeed, started: datetime) -> None:
        try:
            changes = await run_in_threadpool(feed.poll)
        except DatabaseUnavailable as exc:
            self._note_unreachable(exc)
            return
        except Exception:  # a database hiccup must not end every tab's stream
            log.exception("live updates: reading changes failed; trying again")
            return
        if self._unreachable:
            self._unreachable = False
            log.warning("live updates: the database answers again")
        now = self._clock.now()
        if self._covered_from is None:
            self._covered_from = started - feed.window
        self._recent.extend(changes)
        horizon = now - timedelta(seconds=REPLAY_SECONDS)
        while self._recent and self._recent[0].seen_at < horizon:
            self._recent.popleft()
        self._covered_from = max(self._covered_from, horizon)
        if changes:
            for subscription in list(self._subscribers):
                subscription.offer(changes, now)

    def _note_unreachable(self, error: DatabaseUnavailable) -> None:
        if not self._unreachable:
            self._unreachable = True
            log.warning("live updates: %s; trying again until it answers", error)

    async def _check_sessions(self) -> None:
        ids = {s.session_id for s in self._subscribers}
        try:
            users = await run_in_threadpool(self._sessions.live_users, ids)
        except DatabaseUnavailable as exc:
            self._note_unreachable(exc)
            return
        except Exception:
            log.exception("live updates: checking sessions failed; trying again")
            return
        for subscription in list(self._subscribers):
            user = users.get(subscription.session_id)
            if user is None:
                subscription.end("signed-out")
            elif user.roles != subscription.visitor.user.roles:
                subscription.end("reconnect")
