"""The Graph tab on a real server and scheduler (SQLite and PostgreSQL): a run's task states on
the drawn graph, the run selector, groups and edge labels, live-update wiring, and who may see
what (roles, DAG scope)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, Browser, SignIn
from tests.web.graph_example import DAG_ID, FILE_NAME, SOURCE

pytestmark = pytest.mark.slow

GRAPH = f"/dags/{DAG_ID}/graph"
_NODE = re.compile(r'<g class="node state-([a-z_]+)[^"]*" data-task-id="([^"]+)" data-state="\1"')


def node_states(html: str) -> dict[str, str]:
    return {task_id: state for state, task_id in _NODE.findall(html)}


def run_ids(api: ApiServer) -> list[str]:
    """The graph DAG's runs, newest first."""
    runs, _ = api.runs.list_runs(DAG_ID, order_by="-id")
    return [r.run_id for r in runs]


@pytest.fixture(scope="module", autouse=True)
def setting(api: ApiServer) -> None:
    api.create_user("graph_admin", PASSWORD, "Admin")
    api.create_user("graph_viewer", PASSWORD, "Viewer")
    api.create_user("graph_public", PASSWORD, "Public")
    for args in (
        ("roles", "create", "graph_my_dag"),
        ("roles", "add-perms", "graph_my_dag", "-r", "DAG:my_dag", "-a", "can_read"),
        ("roles", "add-perms", "graph_my_dag", "-r", "DAG Runs", "-a", "can_read"),
        ("roles", "add-perms", "graph_my_dag", "-r", "Task Instances", "-a", "can_read"),
        ("roles", "create", "graph_shape_only"),
        ("roles", "add-perms", "graph_shape_only", "-r", f"DAG:{DAG_ID}", "-a", "can_read"),
    ):
        result = api.slipstream(*args)
        assert result.returncode == 0, result.stderr
    api.create_user("graph_scoped", PASSWORD, "graph_my_dag")
    api.create_user("graph_shape", PASSWORD, "graph_shape_only")
    (api.home / "dags" / FILE_NAME).write_text(SOURCE)
    api.sync_dags()
    api.start_scheduler()
    for _ in range(2):
        result = api.slipstream("dags", "trigger", DAG_ID, "--wait")
        assert result.returncode in (0, 1), result.stderr


def test_the_latest_run_colours_each_task_by_its_state(api: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("graph_admin")
    page = admin.get(GRAPH)
    assert page.status_code == 200, page.text
    latest = run_ids(api)[0]
    states = node_states(page.text)
    assert states == {
        "start": "success",
        "extract.orders": "success",
        "extract.people.customers": "success",
        "extract.people.staff": "success",
        "batches": "success",
        "load": "success",
        "check_totals": "failed",
        "report": "success",
    }
    # The state is told in words too, on the node and to screen readers.
    assert '<tspan aria-hidden="true">\u2717 </tspan>failed</text>' in page.text
    assert 'aria-label="check_totals: failed"' in page.text
    # The mapped task shows its count and a summary.
    assert "3 mapped: success" in page.text
    assert 'aria-label="load: 3 mapped instances: 3 success"' in page.text
    # Each node opens its task instance's panel.
    panel = f"/dags/{DAG_ID}/runs/{quote(latest, safe='')}/tasks/check_totals?map_index=-1"
    assert f'href="{panel}"' in page.text
    # Groups are boxes with their titles (ids shown within the group), labels on edges.
    assert 'data-group-id="extract"' in page.text and 'data-group-id="extract.people"' in page.text
    assert ">people</text>" in page.text and "Pull the sources" in page.text
    assert ">customers</text>" in page.text
    assert ">daily load</text>" in page.text and ">once extracted</text>" in page.text
    assert page.text.count('class="edge"') == 9
    # The run's state, the selector with the latest run chosen, the tabs and the legend.
    assert f"Graph of run <code>{latest}</code>" in page.text
    assert f'<option value="{latest}" selected>' in page.text
    assert '<a href="/dags/graph_demo/graph" aria-current="page">Graph</a>' in page.text
    assert 'aria-label="States in this run"' in page.text
    assert f'href="/dags/{DAG_ID}/trigger">Trigger</a>' in page.text


def test_the_region_follows_the_run_it_shows_by_its_live_topic(
    api: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("graph_admin")
    latest = run_ids(api)[0]
    page = admin.get(GRAPH)
    # The run's topic, not the DAG's; htmx hears it by the name with ":" for "/" (live.js).
    assert f'data-live-topics="run:{DAG_ID}/{latest}"' in page.text
    assert f'hx-trigger="live:run:{DAG_ID}:{latest} from:body"' in page.text
    assert f"dag:{DAG_ID}" not in page.text
    # What live updates fetch: the graph's region alone, for the same run.
    refresh = re.search(r'<section id="dag-graph"[^>]*hx-get="([^"]+)"', page.text)
    assert refresh is not None
    url = refresh.group(1).replace("&amp;", "&")
    assert url == f"{GRAPH}?run_id={quote(latest, safe='')}"  # the run shown, not a newer one
    part = admin.get(url, headers={"HX-Request": "true", "HX-Target": "dag-graph"})
    assert part.status_code == 200
    assert part.text.lstrip().startswith('<section id="dag-graph"') and "<html" not in part.text
    assert node_states(part.text) == node_states(page.text)


def test_an_older_run_is_chosen_by_its_id_and_an_unknown_one_is_404(
    api: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("graph_admin")
    latest, older = run_ids(api)[:2]
    page = admin.get(GRAPH, params={"run_id": older})
    assert page.status_code == 200
    assert f'<option value="{older}" selected>' in page.text
    assert f'<option value="{latest}">' in page.text
    assert f'hx-get="{GRAPH}?run_id={quote(older, safe="")}"' in page.text
    assert f'data-live-topics="run:{DAG_ID}/{older}"' in page.text
    assert f'hx-trigger="live:run:{DAG_ID}:{older} from:body"' in page.text
    assert node_states(page.text)["check_totals"] == "failed"
    missing = admin.get(GRAPH, params={"run_id": "no_such_run"})
    assert missing.status_code == 404 and "no_such_run" in missing.text


def test_a_viewer_sees_the_states_but_no_trigger_button(api: ApiServer, sign_in: SignIn) -> None:
    page = sign_in("graph_viewer").get(GRAPH)
    assert page.status_code == 200
    assert node_states(page.text)["check_totals"] == "failed"
    assert "/trigger" not in page.text


def test_a_dag_scoped_user_gets_404_for_other_dags(api: ApiServer, sign_in: SignIn) -> None:
    scoped = sign_in("graph_scoped")
    hidden = scoped.get(GRAPH)
    assert hidden.status_code == 404 and DAG_ID in hidden.text
    assert scoped.get(f"{GRAPH}?run_id={run_ids(api)[0]}").status_code == 404
    mine = scoped.get("/dags/my_dag/graph")
    assert mine.status_code == 200
    assert "No runs yet" in mine.text
    # Without a run, each task shows its operator and the region waits for the DAG's runs.
    assert node_states(mine.text) and set(node_states(mine.text).values()) == {"none"}
    assert 'data-live-topics="dag:my_dag"' in mine.text
    assert 'hx-trigger="live:dag:my_dag from:body"' in mine.text
    assert "node-link" not in mine.text


def test_a_role_that_reads_the_dag_but_not_its_runs_sees_the_tasks_only(
    api: ApiServer, sign_in: SignIn
) -> None:
    page = sign_in("graph_shape").get(GRAPH)
    assert page.status_code == 200
    assert set(node_states(page.text).values()) == {"none"}
    assert "do not allow reading this DAG" in page.text
    assert 'name="run_id"' not in page.text and "node-link" not in page.text
    assert run_ids(api)[0] not in page.text


def test_refused_and_unknown(api: ApiServer, sign_in: SignIn) -> None:
    public = sign_in("graph_public").get(GRAPH)
    assert public.status_code == 403 and "Not allowed" in public.text
    admin = sign_in("graph_admin")
    assert admin.get("/dags/no_such_dag/graph").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(api: ApiServer, browser: Browser) -> None:
    answer = browser.get(GRAPH)
    assert answer.status_code in (302, 303, 307)
    assert "/sign-in" in answer.headers["location"]


def test_groups_collapse_into_one_node_and_expand_again(api: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("graph_admin")
    page = admin.get(GRAPH)
    assert (
        'href="/dags/graph_demo/graph?collapsed=extract" aria-label="Collapse group extract"'
        in (page.text)
    )
    folded = admin.get(GRAPH, params={"collapsed": "extract"})
    assert folded.status_code == 200
    states = node_states(folded.text)
    assert not any(task_id.startswith("extract.") for task_id in states)
    assert 'data-group-id="extract" data-state="success"' in folded.text
    assert 'aria-label="Expand group extract: 3 tasks, collapsed: 3 success"' in folded.text
    assert 'href="/dags/graph_demo/graph" aria-label="Expand group extract' in folded.text
    # The edges into and out of the group keep their labels.
    assert ">daily load</text>" in folded.text and ">once extracted</text>" in folded.text
    # The run selector and the live refresh keep the group collapsed (and the refresh, the run).
    assert '<input type="hidden" name="collapsed" value="extract">' in folded.text
    assert "collapsed=extract" in re.search(r'hx-get="([^"]+)"', folded.text).group(1)  # type: ignore[union-attr]
    # An inner group alone: drawn as a node inside its outer group's box.
    inner = admin.get(GRAPH, params={"collapsed": "extract.people"})
    assert 'data-group-id="extract.people" data-state="success"' in inner.text
    assert "extract.orders" in node_states(inner.text)
    assert 'aria-label="Collapse group extract"' in inner.text
    unknown = admin.get(GRAPH, params={"collapsed": "nothing_here"})
    assert unknown.status_code == 400 and "no task group &#39;nothing_here&#39;" in unknown.text
