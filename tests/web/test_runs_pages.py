"""The trigger form, the run page, the Runs tab and the run actions on a real server and
scheduler (SQLite and PostgreSQL): what each role sees and may do, DAG scoping, CSRF on every
post, a conf checked as the API checks it (each problem beside its field, nothing created
until it passes), and each action done through the services the API uses."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest

from slipstream.core.states import RunState
from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, Browser, SignIn

pytestmark = pytest.mark.slow

FORM_DAG = """
from datetime import datetime
from slipstream import DAG, Param, task

with DAG("form_dag", schedule=None, start_date=datetime(2024, 1, 1), params={
    "name": Param("ada", type="string", minLength=2, maxLength=10, title="Name",
                  description="Who to greet."),
    "count": Param(3, type="integer", minimum=1, maximum=9),
    "colour": Param("red", enum=["red", "green"]),
    "dry": Param(False, type="boolean"),
    "day": Param("2024-01-31", type="string", format="date"),
    "tags": Param(["a"], type="array"),
    "needed": Param(type="string", description="No default: a value is needed."),
}):
    @task
    def show(**context):
        return dict(context["params"])

    show()
"""
MAPPED_DAG = """
from datetime import datetime
from slipstream import DAG, task

with DAG("mapped_dag", schedule=None, start_date=datetime(2024, 1, 1)):
    @task
    def double(n):
        return n * 2

    @task
    def total(values):
        return sum(values)

    total(double.expand(n=[1, 2, 3]))
"""
FAILING_DAG = """
from datetime import datetime
from slipstream import DAG, BashOperator

with DAG("failing_dag", schedule=None, start_date=datetime(2024, 1, 1)):
    ok = BashOperator(task_id="ok", bash_command="echo fine")
    ok >> BashOperator(task_id="boom", bash_command="exit 1")
"""


@pytest.fixture(scope="module", autouse=True)
def setting(api: ApiServer) -> None:
    api.create_user("runs_admin", PASSWORD, "Admin")
    api.create_user("runs_user", PASSWORD, "User")
    api.create_user("runs_viewer", PASSWORD, "Viewer")
    for args in (
        ("roles", "create", "my_dag_runner"),
        ("roles", "add-perms", "my_dag_runner", "-r", "DAG:my_dag", "-a", "can_read", "can_edit"),
        (
            "roles", "add-perms", "my_dag_runner", "-r", "DAG Runs",
            "-a", "can_read", "can_create", "can_edit",
        ),
    ):  # fmt: skip
        assert api.slipstream(*args).returncode == 0, args
    api.create_user("runs_scoped", PASSWORD, "my_dag_runner")
    for name, text in (
        ("form_dag.py", FORM_DAG),
        ("mapped_dag.py", MAPPED_DAG),
        ("failing_dag.py", FAILING_DAG),
    ):
        (api.home / "dags" / name).write_text(text)
    api.sync_dags()
    api.start_scheduler()


def run_url(dag_id: str, run_id: str) -> str:
    return f"/dags/{dag_id}/runs/{quote(run_id, safe='')}"


def run_ids(api: ApiServer, dag_id: str) -> list[str]:
    found, _ = api.runs.list_runs(dag_id, limit=None)
    return [run.run_id for run in found]


def trigger_form(browser: Browser, dag_id: str) -> str:
    page = browser.get(f"/dags/{dag_id}/trigger")
    assert page.status_code == 200, page.text
    return page.text


def defaults_of(page: str) -> dict[str, str]:
    """The form's fields as the page fills them in (as a browser would submit them)."""
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input[^>]* name="([^"]+)"[^>]* value="([^"]*)"', page)
    }
    fields.update(
        {
            name: html.unescape(value)
            for name, value in re.findall(
                r'<textarea[^>]* name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S
            )
        }
    )
    for name, value in re.findall(
        r'<select[^>]* name="([^"]+)".*?<option value="([^"]*)" selected', page, re.S
    ):
        fields[name] = html.unescape(value)
    return fields


def post_trigger(browser: Browser, dag_id: str, **changes: str) -> httpx.Response:
    fields = defaults_of(trigger_form(browser, dag_id))
    fields.update(changes)
    return browser.post(f"/dags/{dag_id}/trigger", fields)


def created_run_id(answer: httpx.Response, dag_id: str) -> str:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(f"/dags/{dag_id}/runs/")
    return httpx.URL(location).path.rsplit("/", 1)[1]


def field_error(page: str, input_id: str) -> str:
    found = re.search(rf'<p class="field-error" id="{input_id}-error">(.*?)</p>', page, re.S)
    assert found is not None, f"no error beside {input_id}:\n{page}"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


# ----------------------------------------------------------------- the trigger form


def test_the_trigger_form_has_a_field_per_param_with_its_schema(sign_in: SignIn) -> None:
    page = trigger_form(sign_in("runs_user"), "form_dag")
    assert '<label for="param-name">Name</label>' in page
    assert re.search(
        r'<input id="param-name" name="param.name" type="text" value="ada"'
        r' minlength="2" maxlength="10"',
        page,
    )
    assert "Who to greet." in page
    assert re.search(r'id="param-count" name="param.count" type="number" value="3" min="1"'
                     r' max="9" step="1"', page)  # fmt: skip
    assert re.search(r'<select id="param-colour" name="param.colour"', page)
    assert '<option value="&#34;green&#34;">green</option>' in page
    assert 'type="checkbox" id="param-dry" name="param.dry" value="true"' in page
    assert 'id="param-day" name="param.day" type="date" value="2024-01-31"' in page
    tags = r'<textarea id="param-tags" name="param.tags"[^>]*>\[\n  &#34;a&#34;\n\]'
    assert re.search(tags, page)
    assert re.search(r'<label for="param-needed">needed <span class="required"', page)
    assert "No default: a value is needed." in page
    # The advanced editor starts as the defaults' JSON, and says it wins when edited.
    assert '<textarea id="conf-json" name="conf_json"' in page
    assert "If you edit it, it is the run's conf and the fields above are not used." in page
    assert 'id="run-id" name="run_id"' in page and 'id="logical-date"' in page
    assert '<button type="submit" class="button primary">&#x25B6; Trigger</button>' in page
    assert "This DAG is paused" not in page


def test_a_trigger_through_the_fields_creates_the_run_and_goes_to_its_page(
    api: ApiServer, sign_in: SignIn
) -> None:
    user = sign_in("runs_user")
    answer = post_trigger(
        user,
        "form_dag",
        **{
            "param.name": "grace",
            "param.count": "4",
            "param.colour": '"green"',
            "param.dry": "true",
            "param.needed": "yes",
            "note": "from the form",
        },
    )
    run_id = created_run_id(answer, "form_dag")
    run = api.runs.get("form_dag", run_id)
    assert dict(run.conf) == {
        "name": "grace",
        "count": 4,
        "colour": "green",
        "dry": True,
        "day": "2024-01-31",
        "tags": ["a"],
        "needed": "yes",
    }
    assert run.triggered_by == "ui" and run.note == "from the form"
    done = api.runs.wait("form_dag", run_id, timeout=60)
    assert done.state is RunState.SUCCESS
    page = user.get(answer.headers["location"])
    assert page.status_code == 200
    assert '<dd id="run-state"><span class="badge state-success">' in page.text
    assert "&#34;name&#34;: &#34;grace&#34;" in page.text


def test_bad_values_are_shown_beside_their_fields_and_nothing_is_created(
    api: ApiServer, sign_in: SignIn
) -> None:
    user = sign_in("runs_user")
    before = run_ids(api, "form_dag")
    answer = post_trigger(
        user,
        "form_dag",
        **{"param.name": "x", "param.count": "12", "param.tags": "[1,", "param.needed": ""},
    )
    assert answer.status_code == 400
    page = answer.text
    assert "Nothing was triggered." in page
    # Each field's problem beside it, all at once: the one that could not be read, and those
    # the trigger service's own check refuses.
    assert field_error(page, "param-tags").startswith("✗ not valid JSON")
    assert "expected at least 2 characters" in field_error(page, "param-name")
    assert "expected a number <= 9, got integer 12" in field_error(page, "param-count")
    assert page.count('aria-invalid="true"') == 3
    # The values typed are kept.
    assert 'name="param.name" type="text" value="x"' in page
    assert 'name="param.count" type="number" value="12"' in page
    assert "[1,</textarea>" in page
    # An empty text field sends "" (which this schema allows); a form without the field leaves
    # the param with no value and no default: refused as required.
    fields = defaults_of(trigger_form(user, "form_dag"))
    del fields["param.needed"]
    missing = user.post("/dags/form_dag/trigger", fields)
    assert missing.status_code == 400
    assert "required" in field_error(missing.text, "param-needed")
    assert run_ids(api, "form_dag") == before


def test_the_edited_json_is_the_conf_and_its_problems_are_shown_at_the_top(
    api: ApiServer, sign_in: SignIn
) -> None:
    user = sign_in("runs_user")
    before = run_ids(api, "form_dag")
    broken = post_trigger(user, "form_dag", conf_json="{not json")
    assert broken.status_code == 400
    assert "The advanced JSON is not valid JSON" in field_error(broken.text, "conf")
    assert "{not json</textarea>" in broken.text
    not_object = post_trigger(user, "form_dag", conf_json="[1, 2]")
    assert "The conf must be a JSON object, not list" in field_error(not_object.text, "conf")
    bad_param = post_trigger(user, "form_dag", conf_json='{"needed": "x", "count": 0}')
    assert bad_param.status_code == 400
    assert "conf field &#39;count&#39;: expected a number &gt;= 1" in bad_param.text
    assert "The advanced JSON below was edited" in bad_param.text
    assert run_ids(api, "form_dag") == before
    good = post_trigger(user, "form_dag", conf_json='{"needed": "x", "other": [1]}')
    run = api.runs.get("form_dag", created_run_id(good, "form_dag"))
    assert dict(run.conf) == {"needed": "x", "other": [1]}


def test_a_conf_in_the_url_prefills_the_fields_and_the_json(
    api: ApiServer, sign_in: SignIn
) -> None:
    user = sign_in("runs_user")
    given = {"name": "grace", "count": 5, "colour": "green", "tags": ["b", "c"], "extra": 1}
    answer = user.get("/dags/form_dag/trigger", params={"conf": json.dumps(given)})
    assert answer.status_code == 200, answer.text
    page = answer.text
    assert 'id="param-name" name="param.name" type="text" value="grace"' in page
    assert 'id="param-count" name="param.count" type="number" value="5"' in page
    assert '<option value="&#34;green&#34;" selected>green</option>' in page
    assert re.search(r'<textarea id="param-tags"[^>]*>\[\n  &#34;b&#34;,\n  &#34;c&#34;\n\]', page)
    # Params not given keep their defaults; the JSON editor holds the defaults and the conf.
    assert 'id="param-day" name="param.day" type="date" value="2024-01-31"' in page
    fields = defaults_of(page)
    expected = {"name": "grace", "count": 5, "colour": "green", "dry": False}
    expected |= {"day": "2024-01-31", "tags": ["b", "c"], "extra": 1}
    assert json.loads(fields["conf_json"]) == expected
    assert fields["conf_json_initial"] == fields["conf_json"]
    assert "Nothing was triggered" not in page and 'aria-invalid="true"' not in page
    # Sent as it is shown (with the value still needed), the run gets it all, the key that is
    # no param too.
    fields["param.needed"] = "yes"
    del fields["param.dry"]  # an unticked checkbox is not sent
    created = user.post("/dags/form_dag/trigger", fields)
    run = api.runs.get("form_dag", created_run_id(created, "form_dag"))
    assert dict(run.conf) == expected | {"needed": "yes"}


def test_a_conf_in_the_url_that_is_not_a_json_object_is_shown_on_the_form(
    api: ApiServer, sign_in: SignIn
) -> None:
    user = sign_in("runs_user")
    before = run_ids(api, "form_dag")
    for raw, problem in (
        ("[1, 2]", "The conf given in the URL (conf=) must be a JSON object, not list."),
        ('"text"', "The conf given in the URL (conf=) must be a JSON object, not str."),
        ("{not json", "The conf given in the URL (conf=) is not valid JSON: Expecting"),
    ):
        answer = user.get("/dags/form_dag/trigger", params={"conf": raw})
        assert answer.status_code == 400, raw
        assert field_error(answer.text, "conf").startswith(f"✗ {problem}"), raw
        # The form is still there, at its defaults, the conf's text in the editor to mend.
        assert "Nothing was triggered." in answer.text
        assert 'id="param-name" name="param.name" type="text" value="ada"' in answer.text
        assert defaults_of(answer.text)["conf_json"] == raw
        assert '<details class="advanced" open>' in answer.text
    assert run_ids(api, "form_dag") == before


def test_run_id_logical_date_and_note_are_checked_beside_their_fields(
    api: ApiServer, sign_in: SignIn
) -> None:
    user = sign_in("runs_user")
    bad_id = post_trigger(user, "my_dag", run_id="no spaces/here")
    assert bad_id.status_code == 400
    assert "does not match the pattern" in field_error(bad_id.text, "run_id")
    bad_date = post_trigger(user, "my_dag", logical_date="someday")
    assert "Expected a date and time" in field_error(bad_date.text, "logical_date")
    first = post_trigger(user, "my_dag", run_id="ui_chosen_id", logical_date="2023-05-01T10:00")
    assert created_run_id(first, "my_dag") == "ui_chosen_id"
    run = api.runs.get("my_dag", "ui_chosen_id")
    assert run.logical_date is not None and run.logical_date.isoformat() == (
        "2023-05-01T10:00:00+00:00"
    )
    same_id = post_trigger(user, "my_dag", run_id="ui_chosen_id")
    assert same_id.status_code == 409
    assert "already exists" in field_error(same_id.text, "run_id")
    same_date = post_trigger(user, "my_dag", logical_date="2023-05-01T10:00")
    assert same_date.status_code == 409
    assert "already exists" in field_error(same_date.text, "logical_date")
    assert 'value="2023-05-01T10:00"' in same_date.text


def test_a_paused_dag_says_so_and_its_run_is_queued(api: ApiServer, sign_in: SignIn) -> None:
    admin = sign_in("runs_admin")
    assert api.slipstream("dags", "pause", "example_bash").returncode == 0
    try:
        page = trigger_form(admin, "example_bash")
        assert "This DAG is paused." in page
        run_id = created_run_id(post_trigger(admin, "example_bash"), "example_bash")
        assert api.runs.get("example_bash", run_id).state is RunState.QUEUED
        run_page = admin.get(f"/dags/example_bash/runs/{run_id}")
        assert "example_bash is paused:" in run_page.text
    finally:
        assert api.slipstream("dags", "unpause", "example_bash").returncode == 0


# ----------------------------------------------------------------- rights and scope


def test_a_viewer_sees_no_trigger_or_action_and_forged_posts_are_refused(
    api: ApiServer, sign_in: SignIn
) -> None:
    run_id = api.runs.trigger("my_dag", conf={"key": "viewer"}).run.run_id
    viewer = sign_in("runs_viewer")
    runs_tab = viewer.get("/dags/my_dag/runs")
    assert runs_tab.status_code == 200 and run_id in runs_tab.text
    run_page = viewer.get(f"/dags/my_dag/runs/{run_id}")
    assert run_page.status_code == 200
    for page in (runs_tab.text, run_page.text):
        assert "Trigger" not in page
        assert "Edit note" not in page and "Add a note" not in page
        assert "Mark success" not in page and "Delete run" not in page and ">Clear<" not in page
    assert viewer.get("/dags/my_dag/trigger").status_code == 403
    assert viewer.get(f"/dags/my_dag/runs/{run_id}/delete").status_code == 403
    before = run_ids(api, "my_dag")
    posts = {
        "/dags/my_dag/trigger": {"conf_json": "{}", "conf_json_initial": "{}"},
        f"/dags/my_dag/runs/{run_id}/note": {"note": "forged"},
        f"/dags/my_dag/runs/{run_id}/clear": {},
        f"/dags/my_dag/runs/{run_id}/mark-failed": {},
        f"/dags/my_dag/runs/{run_id}/delete": {},
    }
    for path, data in posts.items():
        with_token = viewer.post(path, {**data, "csrf_token": viewer.csrf})
        assert with_token.status_code == 403, path
        assert "Not allowed" in with_token.text
    assert run_ids(api, "my_dag") == before
    assert api.runs.get("my_dag", run_id).note is None


def test_every_post_needs_the_csrf_token(api: ApiServer, sign_in: SignIn) -> None:
    run_id = api.runs.trigger("my_dag", conf={}).run.run_id
    admin = sign_in("runs_admin")
    before = run_ids(api, "my_dag")
    for path in (
        "/dags/my_dag/trigger",
        f"/dags/my_dag/runs/{run_id}/note",
        f"/dags/my_dag/runs/{run_id}/clear",
        f"/dags/my_dag/runs/{run_id}/clear-failed",
        f"/dags/my_dag/runs/{run_id}/mark-success",
        f"/dags/my_dag/runs/{run_id}/mark-failed",
        f"/dags/my_dag/runs/{run_id}/delete",
    ):
        answer = admin.post(path, {"note": "x", "csrf_token": "0" * 64})
        assert answer.status_code == 403 and "Request refused" in answer.text, path
    assert run_ids(api, "my_dag") == before
    assert api.runs.get("my_dag", run_id).note is None


def test_a_scoped_user_reaches_only_their_dags_runs(api: ApiServer, sign_in: SignIn) -> None:
    other = api.runs.trigger("example_etl", conf={}).run.run_id
    scoped = sign_in("runs_scoped")
    assert scoped.get("/dags/my_dag/runs").status_code == 200
    assert scoped.get("/dags/my_dag/trigger").status_code == 200
    for path in (
        "/dags/example_etl/runs",
        "/dags/example_etl/trigger",
        f"/dags/example_etl/runs/{other}",
        f"/dags/example_etl/runs/{other}/clear",
    ):
        assert scoped.get(path).status_code == 404, path
    forged = scoped.post(f"/dags/example_etl/runs/{other}/mark-failed", {"csrf_token": scoped.csrf})
    assert forged.status_code == 404
    assert scoped.post("/dags/example_etl/trigger", {"csrf_token": scoped.csrf}).status_code == 404
    assert api.runs.get("example_etl", other).state is not RunState.FAILED  # never marked
    # Unknown DAGs and runs are 404 pages too.
    assert scoped.get("/dags/my_dag/runs/no_such_run").status_code == 404


# ----------------------------------------------------------------- the run page


def test_the_run_page_shows_the_run_and_its_task_instances(api: ApiServer, sign_in: SignIn) -> None:
    run_id = api.runs.trigger("mapped_dag", conf={"a": 1}, note="see me").run.run_id
    assert api.runs.wait("mapped_dag", run_id, timeout=60).state is RunState.SUCCESS
    admin = sign_in("runs_admin")
    page = admin.get(f"/dags/mapped_dag/runs/{run_id}")
    assert page.status_code == 200
    text = page.text
    assert f'data-live-topics="run:mapped_dag/{run_id}"' in text
    # The region refreshes on the name live.js gives the topic for htmx (":" for "/").
    assert f'hx-trigger="live:run:mapped_dag:{run_id} from:body"' in text
    assert '<dd id="run-state"><span class="badge state-success">' in text
    assert '<pre class="conf" id="run-conf">{\n  &#34;a&#34;: 1\n}</pre>' in text
    assert '<p class="note-text">see me</p>' in text
    # The mapped task's instances together under its summary, each linking to its panel and log.
    assert '<tbody class="task-group mapped" data-task-id="double">' in text
    assert 'double <span class="muted">[3 mapped]</span>' in text
    base = f"/dags/mapped_dag/runs/{quote(run_id, safe='')}/tasks"
    for index in range(3):
        assert f'href="{base}/double?map_index={index}"' in text
        assert f'href="{base}/double/log?map_index={index}&amp;try=1"' in text
    assert f'href="{base}/total?map_index=-1"' in text
    assert text.index('data-task-id="double"') < text.index('data-task-id="total"')
    for label in ("Clear", "Clear failed tasks", "Mark failed", "Delete run"):
        assert f">{label}</a>" in text
    assert ">Mark success</a>" not in text  # it already is
    # The live region alone, for htmx.
    region = admin.get(
        f"/dags/mapped_dag/runs/{run_id}", headers={"HX-Request": "true", "HX-Target": "run-live"}
    )
    assert region.text.lstrip().startswith('<div id="run-live"')
    assert "<html" not in region.text and "run-conf" not in region.text


# ----------------------------------------------------------------- the Runs tab


def test_the_runs_tab_filters_and_shows_conf(api: ApiServer, sign_in: SignIn) -> None:
    long_conf = {"key": "x" * 80}
    long_run = api.runs.trigger("example_etl", conf=long_conf, run_id="long_conf_run").run
    api.runs.trigger("example_etl", conf={}, run_id="old_run", logical_date=_utc("2020-03-01"))
    user = sign_in("runs_user")
    page = user.get("/dags/example_etl/runs").text
    assert 'data-run-id="long_conf_run"' in page and 'data-run-id="old_run"' in page
    assert f'href="{run_url("example_etl", long_run.run_id)}"' in page
    assert "(show all)" in page and "x" * 80 in page  # cut in the summary, whole when expanded
    assert '<label for="run-state">State</label>' in page

    def listed(query: str) -> list[str]:
        answer = user.get(f"/dags/example_etl/runs?{query}")
        assert answer.status_code == 200, answer.text
        return re.findall(r'data-run-id="([^"]+)"', answer.text)

    assert listed("date_from=2020-03-01&date_to=2020-03-01") == ["old_run"]
    assert "old_run" not in listed("date_from=2021-01-01")
    assert listed("date_field=start_date&date_to=2000-01-01") == []
    assert "long_conf_run" not in listed("run_type=scheduled")  # catchup made scheduled ones
    assert "long_conf_run" in listed("run_type=manual&state=queued")
    assert listed("state=failed") == []
    for bad in ("state=sleepy", "run_type=x", "date_from=yesterday", "page=0", "date_field=x"):
        answer = user.get(f"/dags/example_etl/runs?{bad}")
        assert answer.status_code == 400, bad
    # htmx asks for the table alone.
    part = user.get(
        "/dags/example_etl/runs?state=queued",
        headers={"HX-Request": "true", "HX-Target": "run-results"},
    )
    assert part.text.lstrip().startswith('<section id="run-results"')


def test_the_runs_tab_pages_its_runs(api: ApiServer, sign_in: SignIn) -> None:
    # Other tests of this module trigger runs too: make sure there are over 25 (one page).
    user = sign_in("runs_user")
    first = user.get("/dags/failing_dag/runs").text
    shown = len(re.findall(r'data-run-id="', first))
    for n in range(26 - shown if shown < 26 else 0):
        api.runs.trigger("failing_dag", conf={}, run_id=f"paged_{n}")
    first = user.get("/dags/failing_dag/runs?state=queued").text
    assert '<nav class="pagination" aria-label="Pages of runs">' in first
    assert 'id="runs-next"' in first and "/dags/failing_dag/runs?state=queued&amp;page=2" in first
    assert '<span class="button disabled" aria-disabled="true">Previous</span>' in first
    second = user.get("/dags/failing_dag/runs?state=queued&page=2").text
    assert re.search(r"<span>Page 2 of \d+</span>", second)
    previous = '<a id="runs-previous" class="button" href="/dags/failing_dag/runs?state=queued"'
    assert previous in second
    assert len(re.findall(r'data-run-id="', second)) >= 1


def test_the_runs_table_refreshes_on_its_dags_topic_keeping_the_filters(
    api: ApiServer, sign_in: SignIn
) -> None:
    user = sign_in("runs_user")
    page = user.get("/dags/example_etl/runs?run_type=manual&date_from=2000-01-01")
    opening = re.search(r'<section id="run-results"[^>]*>', page.text)
    assert opening is not None
    section = opening.group(0)
    assert 'data-live-topics="dag:example_etl"' in section
    assert 'hx-trigger="live:dag:example_etl from:body"' in section
    assert 'hx-target="this"' in section and 'hx-swap="innerHTML"' in section
    assert 'hx-select="#run-results &gt; *"' in section
    refresh = re.search(r'hx-get="([^"]+)"', section)
    assert refresh is not None
    url = html.unescape(refresh.group(1))
    assert (
        url == "/dags/example_etl/runs?run_type=manual&date_field=logical_date&date_from=2000-01-01"
    )
    # A note's editor holds a live refresh while it is open (live.js).
    assert re.search(
        r'<details class="note-editor" id="note-\d+-editor" data-live-hold>', page.text
    )
    # What the refresh gets: the table alone, still filtered, with a run made since.
    new = api.runs.trigger("example_etl", conf={"fresh": True}, run_id="live_refresh_run").run
    part = user.get(url, headers={"HX-Request": "true", "HX-Target": "run-results"})
    assert part.status_code == 200
    assert part.text.lstrip().startswith('<section id="run-results"') and "<html" not in part.text
    listed = re.findall(r'data-run-id="([^"]+)"', part.text)
    assert listed[0] == new.run_id and "live_refresh_run" not in page.text
    types = re.findall(r"<td>(manual|scheduled|backfill|dataset_triggered)</td>", part.text)
    assert len(types) == len(listed) and set(types) == {"manual"}
    assert "<td>scheduled</td>" in user.get("/dags/example_etl/runs").text  # filtered out above


def test_a_note_is_set_in_place_or_by_a_plain_form(api: ApiServer, sign_in: SignIn) -> None:
    run_id = api.runs.trigger("my_dag", conf={}).run.run_id
    user = sign_in("runs_user")
    tab = user.get("/dags/my_dag/runs").text
    assert "Add a note" in tab
    part = user.post(
        f"/dags/my_dag/runs/{run_id}/note",
        {"note": "looked at it", "next": "/dags/my_dag/runs"},
        headers={"HX-Request": "true", "X-CSRF-Token": user.csrf},
    )
    assert part.status_code == 200
    assert part.text.lstrip().startswith('<div class="note" id="note-')
    assert '<p class="note-text">looked at it</p>' in part.text
    assert api.runs.get("my_dag", run_id).note == "looked at it"
    plain = user.post(
        f"/dags/my_dag/runs/{run_id}/note",
        {"note": "", "next": "//evil.example/", "csrf_token": user.csrf},
    )
    assert (plain.status_code, plain.headers["location"]) == (303, run_url("my_dag", run_id))
    assert api.runs.get("my_dag", run_id).note is None
    too_long = user.post(
        f"/dags/my_dag/runs/{run_id}/note", {"note": "n" * 1001, "csrf_token": user.csrf}
    )
    assert too_long.status_code == 400 and "note must be at most 1000 characters" in too_long.text


# ----------------------------------------------------------------- actions


def test_clear_failed_previews_then_clears_only_the_failed_tasks(
    api: ApiServer, sign_in: SignIn
) -> None:
    run_id = api.runs.trigger("failing_dag", conf={}).run.run_id
    assert api.runs.wait("failing_dag", run_id, timeout=60).state is RunState.FAILED
    user = sign_in("runs_user")
    preview = user.get(f"/dags/failing_dag/runs/{run_id}/clear-failed")
    assert preview.status_code == 200
    assert "1 task instance will be cleared" in preview.text
    assert "<code>boom</code>" in preview.text and "<code>ok</code>" not in preview.text
    everything = user.get(f"/dags/failing_dag/runs/{run_id}/clear")
    assert "2 task instances will be cleared" in everything.text
    done = user.post(f"/dags/failing_dag/runs/{run_id}/clear-failed", {"csrf_token": user.csrf})
    assert (done.status_code, done.headers["location"]) == (303, run_url("failing_dag", run_id))
    # The run went back to queued with only boom cleared: it runs boom again, and fails again.
    assert api.runs.wait("failing_dag", run_id, timeout=60).state is RunState.FAILED
    tries = {ti.task_id: ti.try_number for ti in api.runs.task_instances("failing_dag", run_id)}
    assert tries == {"ok": 1, "boom": 2}


def test_mark_and_delete_a_run(api: ApiServer, sign_in: SignIn) -> None:
    run_id = api.runs.trigger("failing_dag", conf={}).run.run_id
    assert api.runs.wait("failing_dag", run_id, timeout=60).state is RunState.FAILED
    admin = sign_in("runs_admin")
    confirm = admin.get(f"/dags/failing_dag/runs/{run_id}/mark-success")
    assert "Mark the run success?" in confirm.text and ">Mark success</button>" in confirm.text
    marked = admin.post(f"/dags/failing_dag/runs/{run_id}/mark-success", {"csrf_token": admin.csrf})
    assert marked.status_code == 303
    assert api.runs.get("failing_dag", run_id).state is RunState.SUCCESS
    confirm = admin.get(f"/dags/failing_dag/runs/{run_id}/delete")
    assert "This cannot be undone." in confirm.text and ">Delete run</button>" in confirm.text
    deleted = admin.post(f"/dags/failing_dag/runs/{run_id}/delete", {"csrf_token": admin.csrf})
    assert (deleted.status_code, deleted.headers["location"]) == (303, "/dags/failing_dag/runs")
    assert run_id not in run_ids(api, "failing_dag")
    gone = admin.post(f"/dags/failing_dag/runs/{run_id}/delete", {"csrf_token": admin.csrf})
    assert gone.status_code == 404
    assert admin.get(f"/dags/failing_dag/runs/{run_id}/nonsense").status_code == 404


def _utc(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)
