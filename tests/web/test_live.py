"""The live-update stream (/ui/events) and the log page on a real server and scheduler (SQLite
and PostgreSQL): sign-in and permissions on topics, a topic change delivered after a real
state change, the log's live tail, the stream ending on sign-out and on server shutdown; the
log page's content, try selector, download and DAG scope."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
import requests

from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, Browser, SignIn

pytestmark = pytest.mark.slow

TAIL_DAG = """
from datetime import datetime
from slipstream import DAG, BashOperator

with DAG("live_tail", schedule=None, start_date=datetime(2024, 1, 1)):
    talk = BashOperator(task_id="talk", bash_command="echo first line; sleep 6; echo second line")
    talk >> BashOperator(task_id="after", bash_command="echo done")
"""


@pytest.fixture(scope="module", autouse=True)
def setting(api: ApiServer) -> None:
    api.create_user("live_admin", PASSWORD, "Admin")
    api.create_user("live_viewer", PASSWORD, "Viewer")
    api.create_user("live_public", PASSWORD, "Public")
    for args in (
        ("roles", "create", "live_my_dag"),
        ("roles", "add-perms", "live_my_dag", "-r", "DAG:my_dag", "-a", "can_read"),
        ("roles", "add-perms", "live_my_dag", "-r", "Task Logs", "-a", "can_read"),
        ("roles", "add-perms", "live_my_dag", "-r", "DAG Runs", "-a", "can_read"),
    ):
        assert api.slipstream(*args).returncode == 0
    api.create_user("live_scoped", PASSWORD, "live_my_dag")
    (api.home / "dags" / "live_tail.py").write_text(TAIL_DAG)
    api.sync_dags()
    api.start_scheduler()


@dataclass
class Event:
    name: str
    data: str

    def json(self) -> dict[str, object]:
        loaded: dict[str, object] = json.loads(self.data)
        return loaded


class Stream:
    """An open /ui/events stream read event by event (comments count as events named ':')."""

    def __init__(self, browser: Browser, query: str) -> None:
        self._context = browser.http.stream(
            "GET", f"/ui/events?{query}", timeout=httpx.Timeout(30, read=25)
        )
        self.response = self._context.__enter__()
        self._lines = self.response.iter_lines()

    def next(self) -> Event:
        name, data = "message", []
        for line in self._lines:
            if line == "":
                if data or name != "message":
                    return Event(name, "\n".join(data))
                continue
            if line.startswith(":"):
                return Event(":", line[1:].strip())
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        raise EOFError("the stream ended")

    def until(self, name: str, timeout: float, where: object = None) -> Event:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            event = self.next()
            seen.append(event)
            if event.name == name and (where is None or where(event)):  # type: ignore[operator]
                return event
        raise AssertionError(f"no {name!r} event in {timeout} s; saw {seen}")

    def close(self) -> None:
        self._context.__exit__(None, None, None)


@pytest.fixture
def streams() -> Iterator[list[Stream]]:
    opened: list[Stream] = []
    yield opened
    for stream in opened:
        stream.close()


def open_stream(streams: list[Stream], browser: Browser, topics: str, extra: str = "") -> Stream:
    stream = Stream(browser, f"topics={quote(topics)}{extra}")
    streams.append(stream)
    return stream


def trigger(api: ApiServer, dag_id: str, conf: dict[str, object] | None = None) -> str:
    answer = requests.post(
        f"{api.base}/api/v1/dags/{dag_id}/dagRuns",
        json={"conf": conf or {}},
        auth=("live_admin", PASSWORD),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    run_id: str = answer.json()["dag_run_id"]
    return run_id


def wait_run(api: ApiServer, dag_id: str, run_id: str) -> str:
    answer = requests.get(
        f"{api.base}/api/v1/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}?wait=60",
        auth=("live_admin", PASSWORD),
        timeout=90,
    )
    state: str = answer.json()["state"]
    return state


# ----------------------------------------------------------------- the stream


def test_the_stream_needs_a_session(api: ApiServer, browser: Browser) -> None:
    answer = browser.get("/ui/events?topics=dags")
    assert answer.status_code == 401
    assert "Sign in" in answer.text


def test_topics_are_checked_with_the_visitors_rights(api: ApiServer, sign_in: SignIn) -> None:
    scoped = sign_in("live_scoped")
    assert scoped.get("/ui/events?topics=dag:example_bash").status_code == 404
    assert scoped.get("/ui/events?topics=dag:no_such_dag").status_code == 404
    assert scoped.get("/ui/events?topics=" + quote("run:example_bash/r1")).status_code == 404
    assert scoped.get("/ui/events?topics=" + quote("log:example_bash/r/t/-1/1")).status_code == 404
    bad = scoped.get("/ui/events?topics=" + quote("nonsense:1"))
    assert bad.status_code == 400 and "unknown topic" in bad.text
    assert scoped.get("/ui/events?topics=dags&since=soon").status_code == 400
    public = sign_in("live_public")
    assert public.get("/ui/events?topics=dags").status_code == 403


def test_a_state_change_reaches_the_stream_of_those_who_may_see_it(
    api: ApiServer, sign_in: SignIn, streams: list[Stream]
) -> None:
    admin = open_stream(streams, sign_in("live_admin"), "dags dag:my_dag")
    assert admin.response.status_code == 200
    assert admin.response.headers["content-type"].startswith("text/event-stream")
    hello = admin.until("hello", 10)
    assert isinstance(hello.json()["at"], int)
    scoped = open_stream(streams, sign_in("live_scoped"), "dags")
    scoped.until("hello", 10)

    run_id = trigger(api, "example_bash")
    change = admin.until("change", 10)
    assert set(change.json()["topics"]) == {"dags"}  # not dag:my_dag
    run_stream = open_stream(
        streams, sign_in("live_admin"), f"run:example_bash/{run_id}", f"&since={hello.json()['at']}"
    )
    # Opened after the change, but asking since before it: it is told at once.
    assert run_stream.until("change", 10).json()["topics"] == [f"run:example_bash/{run_id}"]
    assert wait_run(api, "example_bash", run_id) == "success"
    # The scoped user never hears of example_bash; my_dag's change reaches both.
    my_run = trigger(api, "my_dag", {"key": "value"})
    assert (
        "dag:my_dag"
        in admin.until("change", 10, lambda e: "dag:my_dag" in e.json()["topics"]).json()["topics"]
    )
    assert scoped.until("change", 10).json()["topics"] == ["dags"]
    assert wait_run(api, "my_dag", my_run) == "success"


def test_signing_out_ends_the_stream(
    api: ApiServer, sign_in: SignIn, streams: list[Stream]
) -> None:
    browser = sign_in("live_viewer")
    stream = open_stream(streams, browser, "dags")
    stream.until("hello", 10)
    answer = browser.post("/sign-out", {"csrf_token": browser.csrf})
    assert answer.status_code == 303
    assert stream.until("bye", 10).json() == {"reason": "signed-out"}
    with pytest.raises(EOFError):
        stream.next()


def test_a_session_ended_elsewhere_ends_the_stream(
    api: ApiServer, sign_in: SignIn, streams: list[Stream]
) -> None:
    """Deleting the user (in another process: the CLI) ends their sessions; the server's
    next session check, within 15 s, ends the stream."""
    api.create_user("live_leaver", PASSWORD, "Viewer")
    stream = open_stream(streams, sign_in("live_leaver"), "dags")
    stream.until("hello", 10)
    assert api.slipstream("users", "delete", "--username", "live_leaver").returncode == 0
    assert stream.until("bye", 20).json() == {"reason": "signed-out"}


def test_a_quiet_stream_gets_heartbeats(
    api: ApiServer, sign_in: SignIn, streams: list[Stream]
) -> None:
    stream = open_stream(streams, sign_in("live_viewer"), "dag:live_tail")
    stream.until("hello", 10)
    started = time.monotonic()
    assert stream.until(":", 20).data == "keep-alive"
    assert 10 < time.monotonic() - started < 20


def test_the_log_tail_shows_lines_while_the_try_runs(
    api: ApiServer, sign_in: SignIn, streams: list[Stream]
) -> None:
    viewer = sign_in("live_viewer")
    run_id = trigger(api, "live_tail")
    topic = f"log:live_tail/{run_id}/talk/-1/1"
    stream = open_stream(streams, viewer, topic, "&log_offset=0")
    stream.until("hello", 10)
    first = stream.until("log", 20, lambda e: "first line" in e.json()["text"])
    assert "second line" not in first.json()["text"]
    # The try is still running: the first line came before the second was written.
    ti = requests.get(
        f"{api.base}/api/v1/dags/live_tail/dagRuns/{quote(run_id, safe='')}/taskInstances/talk",
        auth=("live_admin", PASSWORD),
        timeout=30,
    ).json()
    assert ti["state"] == "running"
    # Meanwhile the pages: the running try's follows its log from what it shows; the next
    # task, with no try yet, says so and listens to its run.
    page = viewer.get(log_url(run_id, dag_id="live_tail", task_id="talk"))
    assert f'data-live-topics="{topic}"' in page.text
    assert "first line" in page.text and 'data-log-offset="' in page.text
    waiting = viewer.get(log_url(run_id, dag_id="live_tail", task_id="after"))
    assert "after has not started a try yet" in waiting.text
    assert f'data-live-topics="run:live_tail/{run_id}"' in waiting.text
    second = stream.until("log", 20, lambda e: "second line" in e.json()["text"])
    assert int(second.json()["offset"]) > int(first.json()["offset"])  # type: ignore[call-overload]
    assert stream.until("log-end", 20).json() == {"topic": topic, "state": "success"}


# ----------------------------------------------------------------- the log page


def log_url(run_id: str, dag_id: str = "my_dag", task_id: str = "process", **query: object) -> str:
    url = f"/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}/log"
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.fixture(scope="module")
def my_run(api: ApiServer) -> str:
    run_id = trigger(api, "my_dag", {"greeting": "hello from the log test"})
    assert wait_run(api, "my_dag", run_id) == "success"
    return run_id


def first_task(api: ApiServer, dag_id: str, run_id: str) -> str:
    listed = requests.get(
        f"{api.base}/api/v1/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances",
        auth=("live_admin", PASSWORD),
        timeout=30,
    ).json()
    task_id: str = listed["task_instances"][0]["task_id"]
    return task_id


def test_the_log_page_shows_the_try_with_its_tools(
    api: ApiServer, sign_in: SignIn, my_run: str
) -> None:
    task_id = first_task(api, "my_dag", my_run)
    viewer = sign_in("live_viewer")
    page = viewer.get(log_url(my_run, task_id=task_id))
    assert page.status_code == 200, page.text
    assert "hello from the log test" in page.text  # the conf, as my_dag logs it
    assert '<label for="log-try">Try</label>' in page.text
    assert '<label for="log-search">Search the log</label>' in page.text
    assert '<label for="log-wrap">Wrap lines</label>' in page.text
    run_path = quote(my_run, safe="")
    api_link = f"/api/v1/dags/my_dag/dagRuns/{run_path}/taskInstances/{task_id}/logs/1"
    assert api_link in page.text
    assert "data-live-topics" not in page.text.split('id="log-view"')[1].split(">")[0]
    download = viewer.get(log_url(my_run, task_id=task_id) + "/download?try=1")
    assert download.status_code == 200
    assert download.headers["content-type"] == "text/plain; charset=utf-8"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert "hello from the log test" in download.text
    # The API answers the same text.
    through_api = requests.get(
        f"{api.base}{api_link}",
        auth=("live_viewer", PASSWORD),
        headers={"Accept": "text/plain"},
        timeout=30,
    )
    assert through_api.text == download.text


def test_the_log_page_refuses_bad_tries_and_hidden_dags(
    api: ApiServer, sign_in: SignIn, my_run: str
) -> None:
    task_id = first_task(api, "my_dag", my_run)
    viewer = sign_in("live_viewer")
    assert viewer.get(log_url(my_run, task_id=task_id, **{"try": 9})).status_code == 404
    assert viewer.get(log_url(my_run, task_id=task_id, **{"try": "x"})).status_code == 400
    assert viewer.get(log_url(my_run, task_id=task_id, map_index="y")).status_code == 400
    assert viewer.get(log_url("no_such_run", task_id=task_id)).status_code == 404
    assert viewer.get(log_url(my_run, task_id="no_such_task")).status_code == 404
    scoped = sign_in("live_scoped")  # may read my_dag's logs, and nothing of example_bash
    assert scoped.get(log_url(my_run, task_id=task_id)).status_code == 200
    run_id = trigger(api, "example_bash")
    hidden = log_url(run_id, dag_id="example_bash", task_id="run_this")
    assert scoped.get(hidden).status_code == 404
    assert scoped.get(hidden + "/download").status_code == 404
    public = sign_in("live_public")
    assert public.get(log_url(my_run, task_id=task_id)).status_code == 403
    anonymous = Browser(api.base)
    try:
        answer = anonymous.get(log_url(my_run, task_id=task_id))
        assert answer.status_code == 303 and "/sign-in" in answer.headers["location"]
    finally:
        anonymous.close()
    assert wait_run(api, "example_bash", run_id) in ("success", "failed")


def test_a_large_log_shows_its_end_and_loads_earlier_parts(
    api: ApiServer, sign_in: SignIn, my_run: str
) -> None:
    task_id = first_task(api, "my_dag", my_run)
    path = api.settings.log_folder / "my_dag" / my_run / task_id / "1.log"
    original = path.read_bytes()
    try:
        path.write_bytes(b"".join(b"line %07d of a long log\n" % n for n in range(60_000)))
        page = sign_in("live_viewer").get(log_url(my_run, task_id=task_id))
        assert page.status_code == 200
        assert "line 0059999 of a long log" in page.text
        assert "line 0000000 of a long log" not in page.text
        assert len(page.text) < 700_000
        assert "Load earlier" in page.text
    finally:
        path.write_bytes(original)


# ----------------------------------------------------------------- shutdown


@pytest.mark.parametrize("fresh_api", ["sqlite"], indirect=True)
def test_an_open_stream_does_not_hold_the_server_when_it_stops(fresh_api: ApiServer) -> None:
    fresh_api.create_user("stopper", PASSWORD, "Viewer")
    fresh_api.sync_dags()
    fresh_api.start()
    browser = Browser(fresh_api.base)
    try:
        assert browser.sign_in("stopper").status_code == 303
        stream = Stream(browser, "topics=dags")
        stream.until("hello", 10)
        server = fresh_api.server
        assert server is not None
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert stream.until("bye", 10).json() == {"reason": "stopping"}
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("the server did not stop with a live stream open")
        assert time.monotonic() - started < 5
        stream.close()
    finally:
        browser.close()
