"""The DAGs page on a real server (SQLite and PostgreSQL): what each role sees and may do,
DAG scoping, the filters, the import errors banner, and pausing through the page with its
CSRF and permission checks."""

from __future__ import annotations

import json
import re

import pytest

from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, SignIn

pytestmark = pytest.mark.slow

EXAMPLES = ["example_bash", "example_etl", "my_dag"]
# Says "dag", so the DAG processor imports it (Airflow's safe mode skips other files).
BROKEN = "from slipstream import DAG\n\ndef broken(:\n"


@pytest.fixture(scope="module", autouse=True)
def setting(api: ApiServer) -> None:
    api.create_user("dags_admin", PASSWORD, "Admin")
    api.create_user("dags_user", PASSWORD, "User")
    api.create_user("dags_viewer", PASSWORD, "Viewer")
    api.create_user("dags_public", PASSWORD, "Public")
    for args in (
        ("roles", "create", "my_dag_only"),
        ("roles", "add-perms", "my_dag_only", "-r", "DAG:my_dag", "-a", "can_read", "can_edit"),
        ("roles", "add-perms", "my_dag_only", "-r", "ImportError", "-a", "can_read"),
    ):
        assert api.slipstream(*args).returncode == 0
    api.create_user("dags_scoped", PASSWORD, "my_dag_only")
    (api.home / "dags" / "broken_dag.py").write_text(BROKEN)
    api.sync_dags()


def dag_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="dag-row[^"]*" data-dag-id="([^"]+)"', html)


def is_paused(api: ApiServer, dag_id: str) -> bool:
    answer = api.slipstream("dags", "list", "--output", "json")
    assert answer.returncode == 0, answer.stderr
    listed = json.loads(answer.stdout)
    return bool(next(d for d in listed if d["dag_id"] == dag_id)["is_paused"])


def test_an_admin_sees_every_dag_with_its_details_and_the_import_errors(
    api: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("dags_admin")
    page = admin.get("/dags")
    assert page.status_code == 200
    assert dag_ids(page.text) == EXAMPLES
    assert "3 DAGs" in page.text
    tag = '<a id="dag-tag-my_dag-example" class="tag" href="/dags?tag=example">example</a>'
    assert tag in page.text
    assert "<code>@daily</code>" in page.text  # example_etl's schedule
    assert page.text.count('role="switch"') == 3
    assert 'aria-label="Pause my_dag"' in page.text
    # The banner names the broken file and shows its error.
    assert "1 DAG file failed to import" in page.text
    assert "broken_dag.py" in page.text and "SyntaxError" in page.text
    # Navigation: Security is there for an admin.
    assert '<a href="/security">Security</a>' in page.text
    assert admin.get("/security").status_code == 200


def test_a_viewer_sees_no_pause_control_and_a_forged_post_is_refused(
    api: ApiServer, sign_in: SignIn
) -> None:
    viewer = sign_in("dags_viewer")
    page = viewer.get("/dags")
    assert dag_ids(page.text) == EXAMPLES
    assert 'role="switch"' not in page.text and "/pause" not in page.text
    assert '<span class="badge active">Active</span>' in page.text
    assert "Security" not in page.text
    assert viewer.get("/security").status_code == 403
    # Forged: without a CSRF token, then with the viewer's own valid one.
    without = viewer.post("/dags/my_dag/pause", {"is_paused": "true"})
    assert without.status_code == 403 and "Request refused" in without.text
    with_token = viewer.post("/dags/my_dag/pause", {"is_paused": "true", "csrf_token": viewer.csrf})
    assert with_token.status_code == 403 and "Not allowed" in with_token.text
    htmx = viewer.post(
        "/dags/my_dag/pause",
        {"is_paused": "true"},
        headers={"HX-Request": "true", "X-CSRF-Token": viewer.csrf},
    )
    assert htmx.status_code == 403 and 'class="flash flash-error"' in htmx.text
    assert not is_paused(api, "my_dag")


def test_a_user_pauses_and_unpauses_with_htmx_or_a_plain_form(
    api: ApiServer, sign_in: SignIn
) -> None:
    user = sign_in("dags_user")
    row = user.post(
        "/dags/example_bash/pause",
        {"is_paused": "true", "next": "/dags"},
        headers={"HX-Request": "true", "X-CSRF-Token": user.csrf},
    )
    assert row.status_code == 200
    assert row.text.lstrip().startswith("<tr") and 'aria-label="Unpause example_bash"' in row.text
    assert is_paused(api, "example_bash")
    plain = user.post(
        "/dags/example_bash/pause",
        {"is_paused": "false", "next": "/dags?status=active", "csrf_token": user.csrf},
    )
    assert (plain.status_code, plain.headers["location"]) == (303, "/dags?status=active")
    assert not is_paused(api, "example_bash")
    # The form's `next` cannot send the browser elsewhere.
    away = user.post(
        "/dags/example_bash/pause",
        {"is_paused": "false", "next": "//evil.example/", "csrf_token": user.csrf},
    )
    assert away.headers["location"] == "/dags"
    bad = user.post("/dags/example_bash/pause", {"is_paused": "maybe", "csrf_token": user.csrf})
    assert bad.status_code == 400 and "is_paused must be true or false" in bad.text
    missing = user.post("/dags/no_such_dag/pause", {"is_paused": "true", "csrf_token": user.csrf})
    assert missing.status_code == 404


def test_a_dag_scoped_user_sees_only_their_dags_anywhere(api: ApiServer, sign_in: SignIn) -> None:
    scoped = sign_in("dags_scoped")
    page = scoped.get("/dags")
    assert dag_ids(page.text) == ["my_dag"]
    assert "1 DAG" in page.text
    for other in ("example_bash", "example_etl"):
        assert other not in page.text
    # The file that failed defines none of their DAGs: no banner for them.
    assert "broken_dag.py" not in page.text and "failed to import" not in page.text
    assert dag_ids(scoped.get("/dags?search=example").text) == []
    assert "No DAG matches these filters." in scoped.get("/dags?search=example").text
    assert dag_ids(scoped.get("/dags?tag=example").text) == ["my_dag"]
    # A DAG outside their scope does not exist for them, even to a POST with a valid token.
    hidden = scoped.post(
        "/dags/example_bash/pause", {"is_paused": "true", "csrf_token": scoped.csrf}
    )
    assert hidden.status_code == 404
    assert not is_paused(api, "example_bash")
    mine = scoped.post(
        "/dags/my_dag/pause",
        {"is_paused": "true", "csrf_token": scoped.csrf},
        headers={"HX-Request": "true"},
    )
    assert mine.status_code == 200 and is_paused(api, "my_dag")
    scoped.post("/dags/my_dag/pause", {"is_paused": "false", "csrf_token": scoped.csrf})
    assert not is_paused(api, "my_dag")


def test_a_role_without_dag_access_gets_403(api: ApiServer, sign_in: SignIn) -> None:
    page = sign_in("dags_public").get("/dags")
    assert page.status_code == 403 and "Not allowed" in page.text


def test_filters_narrow_the_list_and_bad_ones_are_named(api: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("dags_admin")
    assert dag_ids(admin.get("/dags?search=ETL").text) == ["example_etl"]
    assert dag_ids(admin.get("/dags?tag=example&last_run=none").text) == EXAMPLES
    assert dag_ids(admin.get("/dags?last_run=failed").text) == []
    assert dag_ids(admin.get("/dags?status=paused").text) == []
    assert dag_ids(admin.get("/dags?status=active").text) == EXAMPLES
    for query, named in (
        ("status=sleeping", "status must be one of"),
        ("last_run=exploded", "last_run must be one of"),
        ("page=two", "page must be a whole number"),
        ("page=0", "page must be 1 or more"),
    ):
        answer = admin.get(f"/dags?{query}")
        assert answer.status_code == 400 and named in answer.text, query
    # htmx asks for the results alone when the filters change.
    partial = admin.get(
        "/dags?search=my", headers={"HX-Request": "true", "HX-Target": "dag-results"}
    )
    assert partial.text.lstrip().startswith('<section id="dag-results"')
    assert dag_ids(partial.text) == ["my_dag"] and "<html" not in partial.text


def test_runs_show_as_labelled_squares_and_counts(api: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("dags_admin")
    for _ in range(2):
        assert api.slipstream("dags", "trigger", "example_bash").returncode == 0
    page = admin.get("/dags?search=example_bash")
    assert 'aria-label="Last 2 runs, oldest first"' in page.text
    assert page.text.count('class="sq state-queued"') == 2
    assert '<span class="visually-hidden">manual__' in page.text
    assert "2 queued" in page.text
    assert dag_ids(admin.get("/dags?last_run=queued").text) == ["example_bash"]


def test_the_results_refresh_themselves_on_the_dags_topic_keeping_the_filters(
    api: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("dags_admin")
    page = admin.get("/dags?search=y&tag=example&status=active")
    section = re.search(r'<section id="dag-results"[^>]*>', page.text)
    assert section is not None
    opening = section.group(0)
    # It listens to the `dags` topic, and fetches the URL of what it shows, filters and all.
    assert 'data-live-topics="dags"' in opening
    assert 'hx-trigger="live:dags from:body"' in opening
    url = re.search(r'hx-get="([^"]+)"', opening).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert url == "/dags?search=y&tag=example&status=active"
    # Its content is swapped in place; the search box is not part of it.
    assert 'hx-target="this"' in opening and 'hx-swap="innerHTML"' in opening
    assert 'hx-select="#dag-results &gt; *"' in opening
    assert page.text.index('id="dag-search"') < page.text.index('<section id="dag-results"')
    assert dag_ids(page.text) == ["my_dag"]
    # A new run of my_dag (no scheduler here: it stays queued) shows in what the refresh gets.
    assert 'class="sq state-queued"' not in page.text.split('id="dag-results"')[1]
    assert api.slipstream("dags", "trigger", "my_dag").returncode == 0
    part = admin.get(url, headers={"HX-Request": "true", "HX-Target": "dag-results"})
    assert part.status_code == 200
    assert part.text.lstrip().startswith('<section id="dag-results"') and "<html" not in part.text
    assert dag_ids(part.text) == ["my_dag"] and "1 DAG matching" in part.text
    assert part.text.count('class="sq state-queued"') == 1
    # A later page keeps its number in the refresh's URL.
    second = admin.get("/dags?search=example&page=2")
    assert 'hx-get="/dags?search=example&amp;page=2"' in second.text
