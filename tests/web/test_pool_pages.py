"""Pools in the web UI on a real server (SQLite and PostgreSQL): Admin -> Pools with the
figures /api/v1/pools gives, creating, changing and deleting pools through the same service
(audited as the visitor), default_pool's rules, bad input beside its field with nothing
written, who may read and who may change (403 otherwise); and a pool's use on a task
instance's page (waiting for a slot, a pool that does not exist) and on a DAG's Details tab.

No scheduler runs here: the run's task instances are rows written as the scheduler would
leave them (queued, running, scheduled, deferred), so every figure is known exactly. The real
scheduler's tries are in test_pool_use_live.py."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import requests
from sqlalchemy import insert

from slipstream.store.tables import task_instances
from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, Browser, SignIn

pytestmark = pytest.mark.slow

DAG_ID = "pool_rows"
RUN_ID = "r1"
SOURCE = """
from datetime import datetime
from slipstream import DAG, EmptyOperator

with DAG("pool_rows", schedule=None, start_date=datetime(2024, 1, 1)):
    EmptyOperator(task_id="running_two", pool="pp_etl", pool_slots=2)
    EmptyOperator(task_id="queued_one", pool="pp_etl")
    EmptyOperator(task_id="waiting_three", pool="pp_etl", pool_slots=3)
    EmptyOperator(task_id="deferred_one", pool="pp_etl")
    EmptyOperator(task_id="lost", pool="pp_gone")
    EmptyOperator(task_id="plain")
"""
# task id -> (state, pool, pool_slots), as the scheduler would have left them.
ROWS = {
    "running_two": ("running", "pp_etl", 2),
    "queued_one": ("queued", "pp_etl", 1),
    "waiting_three": ("scheduled", "pp_etl", 3),
    "deferred_one": ("deferred", "pp_etl", 1),
    "lost": ("scheduled", "pp_gone", 1),
    "plain": ("success", "default_pool", 1),
}
# pp_etl: 6 slots, counting deferred tasks: 2 running + 1 queued + 1 deferred occupy 4.
ETL_FIGURES = {
    "slots": "6",
    "occupied": "4",
    "running": "2",
    "queued": "1",
    "scheduled": "3",
    "deferred": "1",
    "open": "2",
}


@pytest.fixture(scope="module")
def server(module_home: ApiServer) -> ApiServer:
    home = module_home
    for name, role in (
        ("pp_admin", "Admin"),
        ("pp_op", "Op"),
        ("pp_viewer", "Viewer"),
        ("pp_public", "Public"),
    ):
        home.create_user(name, PASSWORD, role)
    # May read pool_rows and its task instances, but not pools.
    pairs = ["-a", "can_read", "-r", f"DAG:{DAG_ID}", "Task Instances", "DAG Runs"]
    for args in (("roles", "create", "pp_no_pools"), ("roles", "add-perms", "pp_no_pools", *pairs)):
        assert home.slipstream(*args).returncode == 0
    home.create_user("pp_scoped", PASSWORD, "pp_no_pools")
    made = home.slipstream("pools", "set", "pp_etl", "6", "ETL loads", "--include-deferred")
    assert made.returncode == 0, made.stderr
    (home.home / "dags" / "pool_rows.py").write_text(SOURCE)
    home.sync_dags()
    run = home.runs.trigger(DAG_ID, conf={}, run_id=RUN_ID).run
    now = datetime.now(UTC)
    with home.db.write() as conn:
        for task_id, (state, pool, slots) in ROWS.items():
            conn.execute(
                insert(task_instances).values(
                    run_pk=run.id,
                    task_id=task_id,
                    dag_id=DAG_ID,
                    run_id=RUN_ID,
                    state=state,
                    try_number=0 if state == "scheduled" else 1,
                    operator="EmptyOperator",
                    pool=pool,
                    pool_slots=slots,
                    updated_at=now,
                )
            )
    home.start()
    return home


def text_of(response: httpx.Response) -> str:
    return html.unescape(response.text)


def figures_of(page: str, pool: str) -> dict[str, str]:
    """A pool's row on the list: its figures by name."""
    row = re.search(rf'<tr class="pool-row" data-pool="{re.escape(pool)}">(.*?)</tr>', page, re.S)
    assert row is not None, f"no row for {pool}"
    return dict(re.findall(r'<td data-figure="([a-z]+)">(\d+)', row.group(1)))


def api_pool(server: ApiServer, name: str) -> requests.Response:
    return requests.get(
        f"{server.base}/api/v1/pools/{name}", auth=("pp_admin", PASSWORD), timeout=30
    )


def pool_events(server: ApiServer) -> list[dict[str, Any]]:
    answer = requests.get(
        f"{server.base}/api/v1/eventLogs",
        params={"limit": 100, "order_by": "-event_log_id"},
        auth=("pp_admin", PASSWORD),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json()["event_logs"] if e["event"].startswith("pool_")]


def post(browser: Browser, path: str, fields: dict[str, str]) -> httpx.Response:
    return browser.post(path, {**fields, "csrf_token": browser.csrf})


# ------------------------------------------------------------------ the list


def test_admin_leads_to_the_pools_with_the_apis_figures(server: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("pp_admin")
    dags = admin.get("/dags").text
    assert '<li><a href="/admin">Admin</a></li>' in dags
    entry = admin.get("/admin")
    assert entry.status_code == 307 and entry.headers["location"] == "/admin/pools"
    page = admin.get("/admin/pools")
    assert page.status_code == 200
    assert '<a href="/admin" aria-current="page">Admin</a>' in page.text
    assert '<a href="/admin/pools" aria-current="page">Pools</a>' in page.text
    assert figures_of(page.text, "pp_etl") == ETL_FIGURES
    assert "1 <span" in page.text.split('data-pool="pp_etl"')[1].split('data-figure="deferred">')[1]
    assert "counted" in page.text
    # The same figures as the API's, for every pool listed.
    listed = requests.get(
        f"{server.base}/api/v1/pools", auth=("pp_admin", PASSWORD), timeout=30
    ).json()["pools"]
    for pool in listed:
        shown = figures_of(page.text, pool["name"])
        assert shown == {
            "slots": str(pool["slots"]),
            "occupied": str(pool["occupied_slots"]),
            "running": str(pool["running_slots"]),
            "queued": str(pool["queued_slots"]),
            "scheduled": str(pool["scheduled_slots"]),
            "deferred": str(pool["deferred_slots"]),
            "open": str(pool["open_slots"]),
        }, pool["name"]
    assert figures_of(page.text, "default_pool")["open"] == "128"
    assert 'href="/admin/pools/pp_etl">pp_etl</a>' in page.text
    assert "Create a pool" in page.text


def test_the_list_refreshes_itself_live_as_an_htmx_fragment(
    server: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("pp_admin")
    page = admin.get("/admin/pools").text
    opening = re.search(r'<section id="pool-list"[^>]*>', page)
    assert opening is not None
    assert 'data-live-topics="dags"' in opening.group(0)
    assert 'hx-trigger="live:dags from:body"' in opening.group(0)
    assert 'hx-get="/admin/pools"' in opening.group(0)
    part = admin.get("/admin/pools", headers={"HX-Request": "true", "HX-Target": "pool-list"})
    assert part.status_code == 200
    assert part.text.lstrip().startswith('<section id="pool-list"') and "<html" not in part.text
    assert figures_of(part.text, "pp_etl") == ETL_FIGURES


def test_a_pools_page_shows_its_figures(server: ApiServer, sign_in: SignIn) -> None:
    page = text_of(sign_in("pp_viewer").get("/admin/pools/pp_etl"))
    assert "<h1>pp_etl</h1>" in page and "ETL loads" in page
    for label, value in (("Slots", 6), ("Occupied", 4), ("Running", 2), ("Queued", 1)):
        assert f"<dt>{label}</dt><dd>{value}</dd>" in page
    assert "<dt>Open</dt><dd>2</dd>" in page
    assert "<dt>Deferred</dt><dd>1 <span" in page and "counted: deferred tasks hold slots" in page


# ------------------------------------------------------------------ who may


def test_a_viewer_reads_pools_but_cannot_change_them(server: ApiServer, sign_in: SignIn) -> None:
    viewer = sign_in("pp_viewer")
    listing = viewer.get("/admin/pools")
    assert listing.status_code == 200 and figures_of(listing.text, "pp_etl") == ETL_FIGURES
    assert "Create a pool" not in listing.text
    assert "see pools but not change them" in listing.text
    page = viewer.get("/admin/pools/pp_etl").text
    assert "/edit" not in page and "Delete pool" not in page
    before = len(pool_events(server))
    for path, fields in (
        ("/admin/pools", {"name": "pp_viewers", "slots": "1"}),
        ("/admin/pools/pp_etl/edit", {"slots": "1"}),
        ("/admin/pools/pp_etl/delete", {}),
    ):
        refused = post(viewer, path, fields)
        assert refused.status_code == 403, path
        assert "pools:edit" in refused.text
    assert api_pool(server, "pp_viewers").status_code == 404
    assert api_pool(server, "pp_etl").json()["slots"] == 6
    assert len(pool_events(server)) == before


def test_without_the_permission_admin_is_hidden_and_refused(
    server: ApiServer, sign_in: SignIn
) -> None:
    public = sign_in("pp_public")
    page = public.get("/account").text
    assert 'href="/admin"' not in page
    for path in ("/admin", "/admin/pools", "/admin/pools/pp_etl", "/admin/pools/nope"):
        refused = public.get(path)
        assert refused.status_code == 403, path
        assert "Not allowed" in refused.text
    assert post(public, "/admin/pools", {"name": "x", "slots": "1"}).status_code == 403
    assert api_pool(server, "x").status_code == 404


def test_every_post_needs_the_csrf_token(server: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("pp_admin")
    for path in ("/admin/pools", "/admin/pools/pp_etl/edit", "/admin/pools/pp_etl/delete"):
        refused = admin.post(path, {"name": "pp_forged", "slots": "1"})
        assert refused.status_code == 403, path
    assert api_pool(server, "pp_forged").status_code == 404
    assert api_pool(server, "pp_etl").json()["slots"] == 6


# ------------------------------------------------------------------ changes


def test_creating_changing_and_deleting_a_pool_is_audited_as_the_visitor(
    server: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("pp_admin")
    made = post(
        admin,
        "/admin/pools",
        {
            "name": "pp_new",
            "slots": "3",
            "description": "a new pool",
            "include_deferred": "true",
        },
    )
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/admin/pools/pp_new?notice=created"
    assert "Pool created." in admin.get(made.headers["location"]).text
    stored = api_pool(server, "pp_new").json()
    assert (stored["slots"], stored["description"], stored["include_deferred"]) == (
        3,
        "a new pool",
        True,
    )
    latest = pool_events(server)[0]
    assert (latest["event"], latest["owner"]) == ("pool_set", "pp_admin")
    assert '"action": "create"' in latest["extra"] and '"name": "pp_new"' in latest["extra"]

    # An Op changes it: the hidden "false" before the box sends an unchecked box too.
    op = sign_in("pp_op")
    saved = post(
        op,
        "/admin/pools/pp_new/edit",
        {"slots": "5", "description": "", "include_deferred": "false"},
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("?notice=saved")
    stored = api_pool(server, "pp_new").json()
    assert (stored["slots"], stored["description"], stored["include_deferred"]) == (
        5,
        None,
        False,
    )
    latest = pool_events(server)[0]
    assert (latest["event"], latest["owner"]) == ("pool_set", "pp_op")
    assert '"action": "update"' in latest["extra"]

    page = admin.get("/admin/pools/pp_new").text
    assert 'data-confirm="Delete the pool pp_new?"' in page
    gone = post(admin, "/admin/pools/pp_new/delete", {})
    assert gone.status_code == 303 and gone.headers["location"] == "/admin/pools?notice=deleted"
    assert "Pool deleted." in admin.get(gone.headers["location"]).text
    assert api_pool(server, "pp_new").status_code == 404
    latest = pool_events(server)[0]
    assert (latest["event"], latest["owner"]) == ("pool_delete", "pp_admin")
    assert '"pool": "pp_new"' in latest["extra"]
    # What is no longer there is not found.
    assert admin.get("/admin/pools/pp_new").status_code == 404
    assert post(admin, "/admin/pools/pp_new/delete", {}).status_code == 404
    assert post(admin, "/admin/pools/pp_new/edit", {"slots": "1"}).status_code == 404


@pytest.mark.parametrize(
    ("fields", "field", "message", "status"),
    [
        ({"name": "", "slots": "1"}, "name", "Enter a pool name.", 400),
        ({"name": "pp_bad", "slots": ""}, "slots", "Enter a number of slots", 400),
        (
            {"name": "pp_bad", "slots": "two"},
            "slots",
            "Slots must be a whole number, not 'two'",
            400,
        ),
        ({"name": "pp_bad", "slots": "1.5"}, "slots", "Slots must be a whole number", 400),
        ({"name": "pp_bad", "slots": "-3"}, "slots", "slots must be >= 0, got -3", 400),
        ({"name": "pp_bad", "slots": "-1"}, "slots", "slots=-1 (an unlimited pool)", 400),
        ({"name": "pp_bad", "slots": "9" * 12}, "slots", "slots must be at most 2147483647", 400),
        (
            {"name": "pp_bad", "slots": "1", "include_deferred": "maybe"},
            "include_deferred",
            "include_deferred must be true or false.",
            400,
        ),
        ({"name": "pp_etl", "slots": "2"}, "name", "Pool: pp_etl already exists", 409),
        ({"name": "x" * 300, "slots": "2"}, "name", "at most 256 characters", 400),
    ],
)
def test_bad_input_is_refused_beside_its_field_with_nothing_written(
    server: ApiServer,
    sign_in: SignIn,
    fields: dict[str, str],
    field: str,
    message: str,
    status: int,
) -> None:
    admin = sign_in("pp_admin")
    before = len(pool_events(server))
    answer = post(admin, "/admin/pools", fields)
    assert answer.status_code == status, answer.text
    error = re.search(
        rf'<p class="field-error" id="{field}-error" role="alert">([^<]+)</p>', answer.text
    )
    assert error is not None, answer.text
    assert message in html.unescape(error.group(1))
    assert f'name="{field}"' in answer.text and 'aria-invalid="true"' in answer.text
    assert '<details class="card create" id="create-pool" open>' in answer.text
    # What was typed is shown again.
    if fields["name"]:
        assert f'value="{fields["name"]}"' in answer.text
    assert len(pool_events(server)) == before
    assert api_pool(server, "pp_bad").status_code == 404
    assert api_pool(server, "pp_etl").json()["slots"] == 6


def test_a_bad_change_is_refused_beside_its_field(server: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("pp_admin")
    before = len(pool_events(server))
    for slots, message in (("-2", "slots must be >= 0, got -2"), ("lots", "whole number")):
        answer = post(admin, "/admin/pools/pp_etl/edit", {"slots": slots, "description": "x"})
        assert answer.status_code == 400
        assert message in text_of(answer)
        assert f'value="{slots}"' in answer.text  # the form keeps what was typed
    assert api_pool(server, "pp_etl").json()["description"] == "ETL loads"
    assert len(pool_events(server)) == before


def test_default_pool_may_be_resized_but_not_deleted(server: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("pp_admin")
    page = admin.get("/admin/pools/default_pool").text
    assert "Delete pool" not in page and "default_pool cannot be deleted" in page
    assert 'name="description"' not in page  # its description cannot be changed
    before = len(pool_events(server))
    refused = post(admin, "/admin/pools/default_pool/delete", {})
    assert refused.status_code == 400
    assert "Default Pool can&#39;t be deleted" in refused.text
    assert api_pool(server, "default_pool").status_code == 200
    # A description sent anyway is refused, not dropped.
    described = post(
        admin, "/admin/pools/default_pool/edit", {"slots": "64", "description": "mine"}
    )
    assert described.status_code == 400
    assert "Only slots and included_deferred can be modified on Default Pool" in described.text
    assert len(pool_events(server)) == before
    assert api_pool(server, "default_pool").json()["slots"] == 128

    resized = post(
        admin, "/admin/pools/default_pool/edit", {"slots": "64", "include_deferred": "false"}
    )
    assert resized.status_code == 303
    assert api_pool(server, "default_pool").json()["slots"] == 64
    assert pool_events(server)[0]["owner"] == "pp_admin"
    assert post(admin, "/admin/pools/default_pool/edit", {"slots": "128"}).status_code == 303
    assert api_pool(server, "default_pool").json()["slots"] == 128


def test_a_pool_name_with_a_slash_and_spaces_has_its_own_page(
    server: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("pp_admin")
    made = post(admin, "/admin/pools", {"name": "team/etl x", "slots": "2"})
    assert made.status_code == 303
    assert made.headers["location"] == "/admin/pools/team%2Fetl%20x?notice=created"
    page = admin.get("/admin/pools/team%2Fetl%20x")
    assert page.status_code == 200 and "<h1>team/etl x</h1>" in page.text
    assert 'action="/admin/pools/team%2Fetl%20x/edit"' in page.text
    saved = post(admin, "/admin/pools/team%2Fetl%20x/edit", {"slots": "4", "description": "d"})
    assert saved.status_code == 303
    listed = requests.get(
        f"{server.base}/api/v1/pools", auth=("pp_admin", PASSWORD), timeout=30
    ).json()["pools"]
    assert next(p for p in listed if p["name"] == "team/etl x")["slots"] == 4
    assert post(admin, "/admin/pools/team%2Fetl%20x/delete", {}).status_code == 303
    assert admin.get("/admin/pools/team%2Fetl%20x").status_code == 404


# ------------------------------------------------------------------ a task's pool


def ti_url(task_id: str) -> str:
    return f"/dags/{DAG_ID}/runs/{RUN_ID}/tasks/{task_id}"


def test_a_task_instance_shows_its_pools_use_and_its_pool_slots(
    server: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("pp_admin")
    page = text_of(admin.get(ti_url("running_two")))
    line = (
        '<a href="/admin/pools/pp_etl">pp_etl</a> · 4 of 6 slots occupied · 2 running · 1 queued'
        " · 1 deferred (counted) · 2 open"
    )
    assert line in page
    assert "<dt>Pool slots</dt><dd>2</dd>" in page
    assert "Waiting for a slot" not in page
    # The part a live refresh swaps carries the figures too.
    facts = admin.get(ti_url("queued_one"), headers={"HX-Request": "true", "HX-Target": "ti-facts"})
    assert facts.text.lstrip().startswith('<section id="ti-facts"')
    assert 'data-live-topics="dag:pool_rows"' in facts.text
    assert line in html.unescape(facts.text)
    assert "<dt>Pool slots</dt><dd>1</dd>" in facts.text


def test_a_scheduled_try_short_of_slots_says_it_waits(server: ApiServer, sign_in: SignIn) -> None:
    page = text_of(sign_in("pp_viewer").get(ti_url("waiting_three")))
    assert "Waiting for a slot: this try needs 3 slots of pool 'pp_etl', which has 2 open." in page
    assert "<dt>Pool slots</dt><dd>3</dd>" in page


def test_a_task_whose_pool_does_not_exist_says_so(server: ApiServer, sign_in: SignIn) -> None:
    page = text_of(sign_in("pp_viewer").get(ti_url("lost")))
    assert 'pp_gone <span class="badge pool-missing">does not exist</span>' in page
    assert "Pool 'pp_gone' does not exist. The scheduler fails a task whose pool is missing" in page


def test_without_pools_read_a_task_shows_its_pool_name_only(
    server: ApiServer, sign_in: SignIn
) -> None:
    scoped = sign_in("pp_scoped")
    page = scoped.get(ti_url("running_two"))
    assert page.status_code == 200
    assert '<dd class="pool-use">pp_etl' in page.text
    assert "slots occupied" not in page.text and "/admin/pools" not in page.text
    assert 'href="/admin"' not in page.text  # no Admin entry either


def test_the_details_tab_lists_the_dags_pools_with_their_use_and_tasks(
    server: ApiServer, sign_in: SignIn
) -> None:
    page = text_of(sign_in("pp_viewer").get(f"/dags/{DAG_ID}/details"))
    assert '<h2 id="details-pools">Pools</h2>' in page
    rows = dict(re.findall(r'<tr class="pool-row" data-pool="([^"]+)">(.*?)</tr>', page, re.S))
    assert list(rows) == ["default_pool", "pp_etl", "pp_gone"]
    etl = re.sub(r"\s+", " ", rows["pp_etl"])
    assert '<a href="/admin/pools/pp_etl">pp_etl</a>' in etl
    # slots, occupied, running, queued, deferred, open
    assert re.findall(r"<td>(\d+)", etl) == ["6", "4", "2", "1", "1", "2"]
    assert "counted" in etl
    tasks = re.findall(r'<code>([a-z_]+)</code> <span class="muted small">\((\d+)\)</span>', etl)
    assert tasks == [
        ("running_two", "2"),
        ("queued_one", "1"),
        ("waiting_three", "3"),
        ("deferred_one", "1"),
    ]
    assert "does not exist" in rows["pp_gone"] and "<code>lost</code>" in rows["pp_gone"]
    assert "<code>plain</code>" in rows["default_pool"]


def test_without_pools_read_the_details_tab_lists_pools_without_figures(
    server: ApiServer, sign_in: SignIn
) -> None:
    page = sign_in("pp_scoped").get(f"/dags/{DAG_ID}/details").text
    assert "Your roles do not allow reading pools" in page
    assert '<th scope="col">Occupied</th>' not in page
    assert 'data-pool="pp_etl"' in page and "<code>running_two</code>" in page
