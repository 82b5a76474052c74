"""A DAG's pages on a real server and scheduler (SQLite and PostgreSQL): the layout and its
tabs, the Grid (task groups, mapped tasks, the htmx fragment), the task instance panel (tries,
XComs, template fields, log links, mapped instances), clearing and marking with a dry-run
preview, Code and Details; with each page's permissions, DAG scope and CSRF."""

from __future__ import annotations

import html
import re

import pytest

from tests.api.conftest import ApiServer, wait_for
from tests.web.conftest import PASSWORD, SignIn

pytestmark = pytest.mark.slow

DAG_ID = "dagview_demo"
DEMO = '''
"""A DAG for the UI's DAG pages."""
from datetime import datetime
from pathlib import Path

from slipstream import DAG, BashOperator, Param, TaskGroup, task

MARKER = Path(__file__).with_name("flaky.marker")

with DAG(
    "dagview_demo",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    tags=["dagview"],
    description="The DAG pages' demo.",
    doc_md="# Demo\\n<script>alert(1)</script> *docs*",
    params={"n": Param(3, type="integer", minimum=1, description="How many")},
    default_args={"owner": "team-a"},
):
    start = BashOperator(task_id="start", bash_command="echo start {{ params.n }}")
    with TaskGroup("extract", tooltip="Extraction") as extract:
        first = BashOperator(task_id="first", bash_command="echo first")
        with TaskGroup("inner"):
            second = BashOperator(task_id="second", bash_command="echo second")
        first >> second

    @task
    def square(x: int) -> int:
        if x == 3:
            raise ValueError("three is not welcome")
        return x * x

    @task
    def flaky() -> str:
        if not MARKER.exists():
            MARKER.write_text("seen")
            raise RuntimeError("the first try fails")
        return "ok"

    start >> extract >> square.expand(x=[1, 2, 3])
    start >> flaky()
'''


@pytest.fixture(scope="module")
def server(module_home: ApiServer) -> ApiServer:
    """The demo DAG, one run of it (flaky failed on its first try, square[2] failed),
    and users: an Admin, a Viewer, and one who may read and edit my_dag only."""
    home = module_home
    (home.home / "dags" / "dagview_demo.py").write_text(DEMO)
    home.create_user("dv_admin", PASSWORD, "Admin")
    home.create_user("dv_viewer", PASSWORD, "Viewer")
    for args in (
        ("roles", "create", "dv_my_dag"),
        ("roles", "add-perms", "dv_my_dag", "-r", "DAG:my_dag", "-a", "can_read", "can_edit"),
        ("roles", "add-perms", "dv_my_dag", "-r", "Task Instances", "-a", "can_read"),
    ):
        assert home.slipstream(*args).returncode == 0
    home.create_user("dv_scoped", PASSWORD, "dv_my_dag")
    home.sync_dags()
    home.start()
    home.start_scheduler()
    answer = home.slipstream("dags", "trigger", DAG_ID, "--run-id", "first", "--wait")
    assert answer.returncode == 1, answer.stdout + answer.stderr
    return home


def ti_url(task_id: str, run_id: str = "first") -> str:
    return f"/dags/{DAG_ID}/runs/{run_id}/tasks/{task_id}"


def row_labels(page: str) -> list[str]:
    found = re.findall(r'<span class="(?:task|group)-label"[^>]*>([^<]+)</span>', page)
    return [html.unescape(label) for label in found]


def state_of(server: ApiServer, run_id: str, task_id: str, map_index: int = -1) -> tuple[str, int]:
    ti, _ = server.runs.task_instance(DAG_ID, run_id, task_id, map_index)
    return ti.state.value, ti.try_number


# ------------------------------------------------------------------ layout and grid


def test_a_dag_leads_to_its_grid_with_the_layout_and_tabs(
    server: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("dv_admin")
    answer = admin.get(f"/dags/{DAG_ID}")
    assert answer.status_code == 307
    assert answer.headers["location"] == f"/dags/{DAG_ID}/grid"
    page = admin.get(f"/dags/{DAG_ID}/grid").text
    assert "<title>dagview_demo · Grid · Slipstream</title>" in page
    for tab in ("grid", "graph", "runs", "code", "details"):
        assert f'href="/dags/{DAG_ID}/{tab}"' in page
    assert f'<a href="/dags/{DAG_ID}/grid" aria-current="page">Grid</a>' in page
    assert f'href="/dags/{DAG_ID}/trigger"' in page and "Trigger</a>" in page
    assert "The DAG pages&#39; demo." in page


def test_the_grid_shows_runs_tasks_in_dag_order_groups_and_mapped_summaries(
    server: ApiServer, sign_in: SignIn
) -> None:
    page = sign_in("dv_admin").get(f"/dags/{DAG_ID}/grid").text
    # Groups before their tasks, in DAG order; task labels without their group's prefix.
    labels = row_labels(page)
    assert labels[:5] == ["start", "extract", "first", "inner", "second"]
    assert set(labels[5:]) == {"square", "flaky"}
    assert 'data-groups="extract extract.inner"' in page  # second folds with both
    assert 'data-group-toggle="extract"' in page
    # The mapped task: one row, its count and states.
    assert 'title="square: 3 mapped: 2 success, 1 failed"><span aria-hidden="true">3<' in page
    # A group's cell summarises its tasks.
    assert 'title="extract: success (2 success)"' in page
    # Cells link to the task instance, which the table's hx-boost sends to the side panel.
    url = ti_url("start")
    assert f'<a class="cell sq state-success" href="{url}" title="start: success">' in page
    assert '<tbody hx-boost="true" hx-target="#ti-panel"' in page
    # A legend; the region refreshes on the DAG's live topic.
    assert 'aria-label="Legend of task states"' in page
    assert 'data-live-topics="dag:dagview_demo"' in page
    assert 'hx-trigger="live:dag:dagview_demo from:body"' in page
    assert "Last 1 run" in page


def test_the_grid_answers_htmx_with_its_region_and_checks_runs(
    server: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("dv_admin")
    partial = admin.get(
        f"/dags/{DAG_ID}/grid", headers={"HX-Request": "true", "HX-Target": "dag-grid"}
    )
    assert partial.status_code == 200
    assert partial.text.lstrip().startswith('<section id="dag-grid"')
    assert "<html" not in partial.text
    assert admin.get(f"/dags/{DAG_ID}/grid?runs=0").status_code == 400
    refused = admin.get(f"/dags/{DAG_ID}/grid?runs=many")
    assert refused.status_code == 400 and "runs must be a whole number" in refused.text
    capped = admin.get(f"/dags/{DAG_ID}/grid?runs=5000")
    assert capped.status_code == 200
    assert '<option value="100" selected>100</option>' in capped.text
    assert admin.get("/dags/no_such_dag/grid").status_code == 404


# ------------------------------------------------------------------ task instance panel


def test_the_panel_shows_state_tries_template_fields_and_log_links(
    server: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("dv_admin")
    page = admin.get(ti_url("start"))
    assert page.status_code == 200
    text = page.text
    assert "<html" in text and "Back to the grid" in text  # its own page without htmx
    assert '<span class="badge state-success">' in text
    assert "<dt>Operator</dt><dd><code>BashOperator</code></dd>" in text
    pool = r'<dd class="pool-use"><a href="/admin/pools/default_pool">default_pool</a> · \d+ of 128'
    assert re.search(pool + r" slots occupied · (.+ · )?\d+ open", html.unescape(text))
    assert "<dt>Pool slots</dt><dd>1</dd>" in text
    log_link = f'href="{ti_url("start")}/log?map_index=-1&amp;try=1">Log<span'
    assert log_link in text and "> of try 1</span></a>" in text
    assert "<code>bash_command</code>" in text
    assert "echo start {{ params.n }}" in html.unescape(text)  # as written, not rendered
    # The panel alone, for htmx.
    panel = admin.get(ti_url("start"), headers={"HX-Request": "true", "HX-Target": "ti-panel"})
    assert "<html" not in panel.text and 'id="ti-facts"' in panel.text


def test_a_mapped_task_lists_its_instances_and_each_shows_its_xcoms_and_error(
    server: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("dv_admin")
    listing = admin.get(ti_url("square")).text
    assert "Mapped instances" in listing
    for index in range(3):
        assert f'href="{ti_url("square")}?map_index={index}"' in listing
    one = admin.get(f"{ti_url('square')}?map_index=1").text
    assert "<code>return_value</code>" in one
    assert '<pre class="field-value">4</pre>' in one  # 2 * 2
    failed = admin.get(f"{ti_url('square')}?map_index=2").text
    assert '<span class="badge state-failed">' in failed
    assert "three is not welcome" in failed
    assert admin.get(f"{ti_url('square')}?map_index=7").status_code == 404
    assert admin.get(f"{ti_url('square')}?map_index=two").status_code == 400
    assert admin.get(ti_url("no_such_task")).status_code == 404
    assert admin.get(ti_url("start", "no_such_run")).status_code == 404


# ------------------------------------------------------------------ permissions and scope


def test_a_viewer_sees_no_actions_and_a_forged_post_is_refused(
    server: ApiServer, sign_in: SignIn
) -> None:
    viewer = sign_in("dv_viewer")
    grid = viewer.get(f"/dags/{DAG_ID}/grid").text
    assert "Trigger</a>" not in grid
    panel = viewer.get(ti_url("flaky")).text
    assert "Mark success" not in panel and "/clear" not in panel
    for action, extra in (("clear", {}), ("mark", {"state": "success"})):
        without = viewer.post(f"{ti_url('flaky')}/{action}", {"step": "preview", **extra})
        assert without.status_code == 403
        forged = viewer.post(
            f"{ti_url('flaky')}/{action}",
            {"step": "confirm", "csrf_token": viewer.csrf, **extra},
        )
        assert forged.status_code == 403
    assert state_of(server, "first", "flaky") == ("failed", 1)


def test_a_dag_scoped_user_finds_no_other_dag(server: ApiServer, sign_in: SignIn) -> None:
    scoped = sign_in("dv_scoped")
    for path in (
        f"/dags/{DAG_ID}/grid",
        f"/dags/{DAG_ID}/code",
        f"/dags/{DAG_ID}/details",
        ti_url("start"),
    ):
        assert scoped.get(path).status_code == 404, path
    forged = scoped.post(f"{ti_url('flaky')}/clear", {"step": "preview", "csrf_token": scoped.csrf})
    assert forged.status_code == 404
    assert scoped.get("/dags/my_dag/grid").status_code == 200
    assert scoped.get("/dags/my_dag/details").status_code == 200


def test_a_post_without_the_csrf_token_is_refused(server: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("dv_admin")
    for action, extra in (("clear", {}), ("mark", {"state": "failed"})):
        answer = admin.post(f"{ti_url('start')}/{action}", {"step": "preview", **extra})
        assert answer.status_code == 403
    assert state_of(server, "first", "start") == ("success", 1)


# ------------------------------------------------------------------ actions


def preview_of(page: str) -> tuple[list[str], dict[str, str]]:
    """The task instances a preview lists, and its confirming form's hidden fields."""
    listed = re.findall(r"<li><code>([^<]+)</code> in <code>([^<]+)</code>", page)
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page))
    return [f"{html.unescape(t)}@{html.unescape(r)}" for t, r in listed], fields


def test_clearing_a_failed_task_previews_then_reruns_it(server: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("dv_admin")
    assert state_of(server, "first", "flaky") == ("failed", 1)
    # With its downstream (flaky has none) and upstream: the preview lists exactly what.
    wide = admin.post(
        f"{ti_url('flaky')}/clear",
        {"step": "preview", "upstream": "true", "csrf_token": admin.csrf},
    )
    assert wide.status_code == 200
    listed, _ = preview_of(wide.text)
    assert sorted(listed) == ["flaky@first", "start@first"]
    preview = admin.post(
        f"{ti_url('flaky')}/clear",
        {"step": "preview", "downstream": "true", "csrf_token": admin.csrf},
        headers={"HX-Request": "true", "HX-Target": "ti-actions"},
    )
    assert preview.status_code == 200 and "<html" not in preview.text
    listed, fields = preview_of(preview.text)
    assert listed == ["flaky@first"]
    assert "Confirm: clear 1" in preview.text
    assert state_of(server, "first", "flaky") == ("failed", 1)  # a preview changes nothing
    # A confirmation whose preview no longer holds shows the list again, changing nothing.
    stale = admin.post(f"{ti_url('flaky')}/clear", {**fields, "expected": "0" * 64})
    assert stale.status_code == 200 and "changed since the preview" in stale.text
    assert state_of(server, "first", "flaky") == ("failed", 1)
    done = admin.post(
        f"{ti_url('flaky')}/clear",
        fields,
        headers={"HX-Request": "true", "HX-Target": "ti-actions"},
    )
    assert done.status_code == 200
    assert done.headers["HX-Retarget"] == "#ti-panel"
    assert "live:dag:dagview_demo" in done.headers["HX-Trigger"]
    assert "Cleared 1 task instance." in done.text
    wait_for(lambda: state_of(server, "first", "flaky") == ("success", 2), 60, "flaky to run again")
    assert state_of(server, "first", "square", 2)[0] == "failed"  # not reached by the clear
    page = admin.get(ti_url("flaky")).text
    assert "> of try 1</span>" in page and "> of try 2</span>" in page


def test_marking_a_mapped_instance_success_after_a_preview(
    server: ApiServer, sign_in: SignIn
) -> None:
    answer = server.slipstream("dags", "trigger", DAG_ID, "--run-id", "second", "--wait")
    assert answer.returncode == 1
    admin = sign_in("dv_admin")
    url = f"{ti_url('square', 'second')}/mark"
    preview = admin.post(
        url, {"step": "preview", "state": "success", "map_index": "2", "csrf_token": admin.csrf}
    )
    listed, fields = preview_of(preview.text)
    assert listed == ["square[2]@second"]
    assert fields["state"] == "success" and fields["map_index"] == "2"
    assert admin.post(url, {**fields, "state": "sideways"}).status_code == 400
    done = admin.post(url, fields)
    assert done.status_code == 303
    assert done.headers["location"] == f"{ti_url('square', 'second')}?map_index=2"
    assert state_of(server, "second", "square", 2)[0] == "success"
    assert state_of(server, "second", "square", 1)[0] == "success"


# ------------------------------------------------------------------ code and details


def test_the_code_tab_shows_the_stored_source_of_each_version(
    server: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("dv_admin")
    page = admin.get(f"/dags/{DAG_ID}/code").text
    assert "<strong>Version 1</strong>" in page
    assert (
        '<span class="line">from slipstream import DAG, BashOperator, Param, TaskGroup, task</span>'
        in page
    )
    assert 'id="code-version"' not in page  # one version: no selector
    path = server.home / "dags" / "dagview_demo.py"
    path.write_text(DEMO.replace("echo first", "echo first, changed"))
    server.sync_dags()
    newer = admin.get(f"/dags/{DAG_ID}/code").text
    assert "<strong>Version 2</strong>" in newer and "echo first, changed" in newer
    ids = re.findall(r'<option value="(\d+)"', newer)
    assert len(ids) == 2
    older = admin.get(f"/dags/{DAG_ID}/code?version={ids[1]}").text
    assert "<strong>Version 1</strong>" in older and "echo first, changed" not in older
    assert "2 runs ran it" in older
    assert admin.get(f"/dags/{DAG_ID}/code?version=99999").status_code == 400
    assert admin.get(f"/dags/{DAG_ID}/code?version=latest").status_code == 400


def test_the_details_tab_shows_schedule_params_doc_and_tasks(
    server: ApiServer, sign_in: SignIn
) -> None:
    page = sign_in("dv_viewer").get(f"/dags/{DAG_ID}/details").text
    assert "Never, external triggers only" in page
    assert "<code>n</code>" in page and "How many" in page
    assert "&#34;minimum&#34;: 1" in page or "&quot;minimum&quot;: 1" in page
    # doc_md is shown as text: its HTML never reaches the page as markup.
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<dt>Owners</dt><dd>team-a</dd>" in page
    assert "<code>extract.inner.second</code>" in page
    assert "<dt>Catchup</dt><dd>No</dd>" in page
