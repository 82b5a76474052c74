"""/api/v1/dags, /dags/{id}/tasks and /importErrors on a real server, SQLite and PostgreSQL:
Airflow 2.10's fields, filters, paging, totals, permissions and errors."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import insert, select, update

from slipstream.store.tables import dags, import_errors, runs, task_instances
from tests.api.conftest import ApiServer

pytestmark = pytest.mark.slow

ADMIN = ("v1d_admin", "admin-pass-1")
# A DAG file whose import never ends: only the import timeout would stop a parse of it. It
# names DAG, or the safe-mode check (a file that never says "dag") would skip it unparsed.
HANGING_DAG = "from slipstream import DAG\nimport time\nwhile True:\n    time.sleep(1)\n"
VIEWER = ("v1d_viewer", "viewer-pass-1")
OP = ("v1d_op", "op-pass-1")

DAG_FILES = {
    "v1d_alpha.py": """
        from datetime import datetime, timedelta
        from slipstream import DAG, BashOperator, EmptyOperator, Param

        with DAG(
            dag_id="v1d_alpha",
            description="the alpha DAG",
            schedule="0 6 * * *",
            start_date=datetime(2024, 1, 1),
            tags=["team_a", "nightly"],
            default_args={"owner": "alice"},
            max_active_tasks=4,
            max_active_runs=2,
            doc_md="# Alpha",
            dagrun_timeout=timedelta(hours=1),
            params={"n": Param(3, type="integer", description="how many")},
        ):
            first = BashOperator(
                task_id="first",
                bash_command="echo hi",
                retries=3,
                retry_delay=timedelta(minutes=5),
                execution_timeout=timedelta(minutes=10),
                max_active_tis_per_dag=1,
            )
            first >> EmptyOperator(task_id="second")
    """,
    "v1d_beta.py": """
        from datetime import datetime, timedelta
        from slipstream import DAG, EmptyOperator

        with DAG(
            dag_id="v1d_beta",
            schedule=timedelta(hours=2, seconds=3),
            start_date=datetime(2024, 1, 1),
            tags=["team_b"],
            is_paused_upon_creation=True,
        ):
            EmptyOperator(task_id="only")
    """,
    "v1d_gamma.py": """
        from slipstream import DAG, EmptyOperator

        with DAG(dag_id="V1D_Gamma", schedule=None):
            EmptyOperator(task_id="only")
    """,
    "v1d_once.py": """
        from datetime import datetime
        from slipstream import DAG, EmptyOperator

        with DAG(dag_id="v1d_once", schedule="@once", start_date=datetime(2024, 1, 1)):
            EmptyOperator(task_id="only")
    """,
    "v1d_broken.py": "from slipstream import DAG\nthis is not python(\n",
    # An Airflow DAG file needing a provider: its import error names the operator.
    "v1d_provider.py": "from airflow import DAG\n"
    "from airflow.providers.snowflake.operators.snowflake import SnowflakeOperator\n",
}


@pytest.fixture(scope="module")
def server(api: ApiServer) -> Iterator[ApiServer]:
    for name, text in DAG_FILES.items():
        (api.home / "dags" / name).write_text(textwrap.dedent(text))
    api.sync_dags()
    api.create_user(*ADMIN, "Admin")
    api.create_user(*VIEWER, "Viewer")
    api.create_user(*OP, "Op")
    yield api


def get(server: ApiServer, path: str, auth: Any = ADMIN, **params: Any) -> requests.Response:
    return requests.get(f"{server.base}/api/v1{path}", params=params, auth=auth, timeout=30)


def patch(
    server: ApiServer, path: str, body: Any, auth: Any = ADMIN, **params: Any
) -> requests.Response:
    return requests.patch(
        f"{server.base}/api/v1{path}", json=body, params=params, auth=auth, timeout=30
    )


def ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"detail", "status", "title", "type"}
    assert body["status"] == status
    return body


DAG_KEYS = {
    "dag_id", "dag_display_name", "root_dag_id", "is_paused", "is_active", "is_subdag",
    "last_parsed_time", "last_pickled", "last_expired", "scheduler_lock", "pickle_id",
    "default_view", "fileloc", "file_token", "owners", "description", "schedule_interval",
    "timetable_description", "tags", "max_active_tasks", "max_active_runs",
    "max_consecutive_failed_dag_runs", "has_task_concurrency_limits", "has_import_errors",
    "next_dagrun", "next_dagrun_data_interval_start", "next_dagrun_data_interval_end",
    "next_dagrun_create_after",
}  # fmt: skip


def test_get_dag_has_every_airflow_field(server: ApiServer) -> None:
    dag = ok(get(server, "/dags/v1d_alpha"))
    assert set(dag) == DAG_KEYS
    fileloc = str(server.home / "dags" / "v1d_alpha.py")
    assert dag == dag | {
        "dag_id": "v1d_alpha",
        "dag_display_name": "v1d_alpha",
        "root_dag_id": None,
        "is_paused": False,
        "is_active": True,
        "is_subdag": False,
        "fileloc": fileloc,
        "owners": ["alice"],
        "description": "the alpha DAG",
        "schedule_interval": {"__type": "CronExpression", "value": "0 6 * * *"},
        "timetable_description": "0 6 * * *",
        "tags": [{"name": "nightly"}, {"name": "team_a"}],
        "max_active_tasks": 4,
        "max_active_runs": 2,
        "max_consecutive_failed_dag_runs": 0,
        "has_task_concurrency_limits": True,
        "has_import_errors": False,
        "default_view": "grid",
    }
    assert isinstance(dag["file_token"], str) and dag["file_token"]
    assert datetime.fromisoformat(dag["last_parsed_time"]).tzinfo is not None
    beta = ok(get(server, "/dags/v1d_beta"))
    assert beta["schedule_interval"] == {
        "__type": "TimeDelta",
        "days": 0,
        "seconds": 7203,
        "microseconds": 0,
    }
    assert beta["is_paused"] is True  # is_paused_upon_creation
    assert beta["owners"] == ["airflow"] and beta["has_task_concurrency_limits"] is False
    gamma = ok(get(server, "/dags/V1D_Gamma"))
    assert gamma["schedule_interval"] is None
    assert gamma["timetable_description"] == "Never, external triggers only"
    assert gamma["tags"] == [] and gamma["description"] is None
    once = ok(get(server, "/dags/v1d_once"))
    assert once["schedule_interval"] == {"__type": "CronExpression", "value": "@once"}


def test_details_add_the_parsed_structure(server: ApiServer) -> None:
    detail = ok(get(server, "/dags/v1d_alpha/details"))
    assert set(detail) >= DAG_KEYS
    assert detail == detail | {
        "timezone": "UTC",
        "catchup": False,
        "orientation": "LR",
        "concurrency": 4,
        "start_date": "2024-01-01T00:00:00+00:00",
        "end_date": None,
        "dag_run_timeout": {"__type": "TimeDelta", "days": 0, "seconds": 3600, "microseconds": 0},
        "dataset_expression": None,
        "doc_md": "# Alpha",
        "params": {
            "n": {
                "__class": "airflow.models.param.Param",
                "value": 3,
                "description": "how many",
                "schema": {"type": "integer"},
            }
        },
        "is_paused_upon_creation": None,
        "last_parsed": detail["last_parsed_time"],
        "template_search_path": None,
        "render_template_as_native_obj": False,
    }
    assert ok(get(server, "/dags/v1d_beta/details"))["is_paused_upon_creation"] is True


def test_tasks_in_airflows_task_shape(server: ApiServer) -> None:
    body = ok(get(server, "/dags/v1d_alpha/tasks"))
    assert body["total_entries"] == 2
    assert [t["task_id"] for t in body["tasks"]] == ["first", "second"]
    first = body["tasks"][0]
    assert first == {
        "class_ref": {
            "module_path": "slipstream.authoring.operators",
            "class_name": "BashOperator",
        },
        "task_id": "first",
        "task_display_name": "first",
        "owner": "alice",
        "start_date": "2024-01-01T00:00:00+00:00",
        "end_date": None,
        "trigger_rule": "all_success",
        "extra_links": [],
        "depends_on_past": False,
        "is_mapped": False,
        "wait_for_downstream": False,
        "retries": 3.0,
        "queue": "default",
        "executor": None,
        "pool": "default_pool",
        "pool_slots": 1.0,
        "execution_timeout": {"__type": "TimeDelta", "days": 0, "seconds": 600, "microseconds": 0},
        "retry_delay": {"__type": "TimeDelta", "days": 0, "seconds": 300, "microseconds": 0},
        "retry_exponential_backoff": False,
        "priority_weight": 1.0,
        "weight_rule": first["weight_rule"],
        "ui_color": "#fff",
        "ui_fgcolor": "#000",
        "template_fields": first["template_fields"],
        "sub_dag": None,
        "downstream_task_ids": ["second"],
        "doc_md": None,
    }
    assert "bash_command" in first["template_fields"]
    newest_first = ok(get(server, "/dags/v1d_alpha/tasks", order_by="-task_id"))
    assert [t["task_id"] for t in newest_first["tasks"]] == ["second", "first"]
    assert ok(get(server, "/dags/v1d_alpha/tasks/second"))["downstream_task_ids"] == []
    problem(get(server, "/dags/v1d_alpha/tasks/nope"), 404)
    problem(get(server, "/dags/nope/tasks"), 404)
    problem(get(server, "/dags/v1d_alpha/tasks", order_by="bash_command"), 400)


def names(response: requests.Response) -> list[str]:
    return [d["dag_id"] for d in ok(response)["dags"]]


def test_list_filters_paging_and_totals(server: ApiServer) -> None:
    ours = {"dag_id_pattern": "v1d_"}
    everything = ok(get(server, "/dags", **ours))
    assert everything["total_entries"] == 4
    assert [d["dag_id"] for d in everything["dags"]] == [
        "V1D_Gamma",
        "v1d_alpha",
        "v1d_beta",
        "v1d_once",
    ]
    assert all(set(d) == DAG_KEYS for d in everything["dags"])
    page = ok(get(server, "/dags", limit=2, offset=1, order_by="-dag_id", **ours))
    assert page["total_entries"] == 4
    assert [d["dag_id"] for d in page["dags"]] == ["v1d_beta", "v1d_alpha"]
    # Case-insensitive substring.
    assert names(get(server, "/dags", dag_id_pattern="GAMM")) == ["V1D_Gamma"]
    # Repeatable tags match any.
    tagged = get(server, "/dags", tags=["team_b", "nightly"])
    assert names(tagged) == ["v1d_alpha", "v1d_beta"]
    assert ok(tagged)["total_entries"] == 2
    assert names(get(server, "/dags", paused="true", **ours)) == ["v1d_beta"]
    assert "v1d_beta" not in names(get(server, "/dags", paused="false", **ours))
    # Examples are loaded too; limit 0 means the default page.
    assert ok(get(server, "/dags", limit=0))["total_entries"] >= 7
    only = ok(get(server, "/dags", fields=["dag_id", "is_paused"], **ours))
    assert only["dags"][0] == {"dag_id": "V1D_Gamma", "is_paused": False}
    assert ok(get(server, "/dags/v1d_beta", fields="dag_id,tags")) == {
        "dag_id": "v1d_beta",
        "tags": [{"name": "team_b"}],
    }


def test_list_refuses_bad_input(server: ApiServer) -> None:
    for params, field in [
        ({"limit": -1}, "limit"),
        ({"offset": -5}, "offset"),
        ({"offset": 2**64}, "offset"),
        ({"order_by": "fileloc"}, "fileloc"),
        ({"only_active": "maybe"}, "only_active"),
        ({"fields": "dag_id,secret"}, "fields"),
        ({"color": "blue"}, "color"),
    ]:
        body = problem(get(server, "/dags", **params), 400)
        assert field in body["detail"], (params, body)
    body = problem(get(server, "/dags", limit="ten"), 400)
    assert "limit" in body["detail"]


def test_credentials_are_required(server: ApiServer) -> None:
    for path in ("/dags", "/dags/v1d_alpha", "/dags/v1d_alpha/tasks", "/importErrors"):
        response = get(server, path, auth=None)
        problem(response, 401)
        assert response.headers["WWW-Authenticate"] == "Basic"
    problem(get(server, "/dags", auth=(ADMIN[0], "wrong")), 401)
    problem(patch(server, "/dags/v1d_alpha", {"is_paused": True}, auth=None), 401)


def test_unknown_dags_are_404(server: ApiServer) -> None:
    body = problem(get(server, "/dags/nope"), 404)
    assert body["detail"] == "The DAG with dag_id: nope was not found"
    problem(get(server, "/dags/nope/details"), 404)
    body = problem(patch(server, "/dags/nope", {"is_paused": True}), 404)
    assert body["detail"] == "Dag with id: 'nope' not found"
    problem(requests.delete(f"{server.base}/api/v1/dags/nope", auth=ADMIN, timeout=30), 404)


def test_pause_and_unpause_one(server: ApiServer) -> None:
    paused = ok(patch(server, "/dags/V1D_Gamma", {"is_paused": True}, update_mask="is_paused"))
    assert set(paused) == DAG_KEYS and paused["is_paused"] is True
    assert ok(get(server, "/dags/V1D_Gamma"))["is_paused"] is True
    assert ok(patch(server, "/dags/V1D_Gamma", {"is_paused": False}))["is_paused"] is False
    # An Op may edit DAGs too.
    assert ok(patch(server, "/dags/V1D_Gamma", {"is_paused": False}, auth=OP))["is_paused"] is False


def test_patch_refuses_anything_but_is_paused(server: ApiServer) -> None:
    body = problem(
        patch(server, "/dags/V1D_Gamma", {"is_paused": True}, update_mask="description"), 400
    )
    assert body["detail"] == "Only `is_paused` field can be updated through the REST API"
    problem(
        patch(server, "/dags/V1D_Gamma", {"is_paused": True}, update_mask="is_paused,tags"), 400
    )
    body = problem(patch(server, "/dags/V1D_Gamma", {"is_paused": True, "dag_id": "x"}), 400)
    assert body["detail"] == "Property is read-only - 'dag_id'"
    for bad in ({"is_paused": "yes"}, {}, [True], {"colour": 1}):
        problem(patch(server, "/dags/V1D_Gamma", bad), 400)
    response = requests.patch(
        f"{server.base}/api/v1/dags/V1D_Gamma", data="{not json", auth=ADMIN, timeout=30
    )
    problem(response, 400)
    assert ok(get(server, "/dags/V1D_Gamma"))["is_paused"] is False


def test_viewer_reads_but_may_not_patch_or_delete(server: ApiServer) -> None:
    assert ok(get(server, "/dags/v1d_alpha", auth=VIEWER))["dag_id"] == "v1d_alpha"
    assert ok(get(server, "/dags", auth=VIEWER, dag_id_pattern="v1d_"))["total_entries"] == 4
    body = problem(patch(server, "/dags/v1d_alpha", {"is_paused": True}, auth=VIEWER), 403)
    assert "can_edit on DAGs" in body["detail"]
    problem(patch(server, "/dags", {"is_paused": True}, auth=VIEWER, dag_id_pattern="~"), 403)
    response = requests.delete(f"{server.base}/api/v1/dags/v1d_alpha", auth=VIEWER, timeout=30)
    assert "can_delete on DAGs" in problem(response, 403)["detail"]
    assert ok(get(server, "/dags/v1d_alpha"))["is_paused"] is False


def test_bulk_pause_by_pattern(server: ApiServer) -> None:
    body = ok(patch(server, "/dags", {"is_paused": True}, dag_id_pattern="v1d_", limit=2))
    assert body["total_entries"] == 4
    assert [(d["dag_id"], d["is_paused"]) for d in body["dags"]] == [
        ("V1D_Gamma", True),
        ("v1d_alpha", True),
    ]
    assert names(get(server, "/dags", paused="true", dag_id_pattern="v1d_")) == [
        "V1D_Gamma",
        "v1d_alpha",
        "v1d_beta",
    ]
    everything = ok(patch(server, "/dags", {"is_paused": False}, dag_id_pattern="~"))
    assert everything["total_entries"] >= 7
    assert not any(d["is_paused"] for d in everything["dags"])
    assert names(get(server, "/dags", paused="true")) == []
    problem(patch(server, "/dags", {"is_paused": True}), 400)  # dag_id_pattern is required
    problem(
        patch(server, "/dags", {"is_paused": True}, dag_id_pattern="~", update_mask="tags"), 400
    )


def test_import_errors(server: ApiServer) -> None:
    body = ok(get(server, "/importErrors"))
    ours = [e for e in body["import_errors"] if e["filename"].endswith("v1d_broken.py")]
    assert len(ours) == 1 and body["total_entries"] == len(body["import_errors"])
    error = ours[0]
    assert set(error) == {"import_error_id", "timestamp", "filename", "stack_trace"}
    assert "SyntaxError" in error["stack_trace"]
    assert datetime.fromisoformat(error["timestamp"]).tzinfo is not None
    assert ok(get(server, f"/importErrors/{error['import_error_id']}")) == error
    assert ok(get(server, f"/importErrors/{error['import_error_id']}", auth=VIEWER)) == error
    [provider] = [e for e in body["import_errors"] if e["filename"].endswith("v1d_provider.py")]
    trace = provider["stack_trace"]
    assert (
        "SnowflakeOperator (from airflow.providers.snowflake.operators.snowflake) is not "
        "available in Slipstream" in trace
    )
    assert 'v1d_provider.py", line 2, in <module>' in trace
    assert "compat/airflow" not in trace  # the user's line, not the import hook's insides
    body = problem(get(server, "/importErrors/999999"), 404)
    assert body["detail"] == "The ImportError with import_error_id: `999999` was not found"
    problem(get(server, "/importErrors/99999999999999999999"), 404)  # beyond any column
    problem(get(server, "/importErrors/abc"), 400)
    problem(get(server, "/importErrors", order_by="stack_trace"), 400)
    problem(get(server, "/importErrors", limit=-1), 400)
    assert ok(get(server, "/importErrors", order_by="-filename", limit=1))["total_entries"] >= 1


def test_delete_refuses_running_tasks_then_removes_the_dag_and_its_runs(
    server: ApiServer,
) -> None:
    (server.home / "dags" / "v1d_doomed.py").write_text(
        textwrap.dedent(
            """
            from slipstream import DAG, EmptyOperator

            with DAG(dag_id="v1d_doomed", schedule=None):
                EmptyOperator(task_id="only")
            """
        )
    )
    server.sync_dags()
    assert ok(get(server, "/dags/v1d_doomed"))["is_active"] is True
    run = server.runs.trigger("v1d_doomed", conf={}, run_id="r1").run
    now = datetime.now(UTC)
    with server.db.write() as conn:
        conn.execute(
            insert(task_instances).values(
                run_pk=run.id,
                task_id="only",
                dag_id="v1d_doomed",
                run_id="r1",
                state="running",
                operator="EmptyOperator",
                updated_at=now,
            )
        )
    url = f"{server.base}/api/v1/dags/v1d_doomed"
    body = problem(requests.delete(url, auth=ADMIN, timeout=30), 409)
    assert body["detail"] == "Task instances of dag with id: 'v1d_doomed' are still running"
    assert ok(get(server, "/dags/v1d_doomed"))["dag_id"] == "v1d_doomed"
    with server.db.write() as conn:
        conn.execute(update(task_instances).values(state="success"))
    response = requests.delete(url, auth=ADMIN, timeout=30)
    assert response.status_code == 204 and response.content == b""
    assert "v1d_doomed" not in names(get(server, "/dags"))
    with server.db.read() as conn:
        assert conn.execute(select(runs.c.id).where(runs.c.dag_id == "v1d_doomed")).all() == []
    # Its file still defines it: the next parse of the file brings it back, with no runs.
    server.sync_dags()
    assert ok(get(server, "/dags/v1d_doomed"))["dag_id"] == "v1d_doomed"
    assert server.runs.list_runs("v1d_doomed")[1] == 0


def children_of(pid: int) -> list[int]:
    """The live child processes of `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After the command name in parentheses: state, then the parent's pid.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def stored_dags(server: ApiServer) -> tuple[list[Any], list[Any]]:
    """What parsing writes: the DAG rows as last parsed, and the import errors."""
    with server.db.read() as conn:
        found = conn.execute(
            select(dags.c.dag_id, dags.c.is_active, dags.c.last_parsed_at).order_by(dags.c.dag_id)
        ).all()
        failed = conn.execute(
            select(import_errors.c.filename, import_errors.c.timestamp).order_by(
                import_errors.c.filename
            )
        ).all()
    return [tuple(row) for row in found], [tuple(row) for row in failed]


def test_an_unknown_dag_is_a_404_at_once_and_no_dag_file_is_parsed(fresh_api: ApiServer) -> None:
    # Parsing the folders to look for the DAG would start a parse child and hang on this
    # file until the import timeout (30 s) ended it.
    (fresh_api.home / "dags" / "hangs.py").write_text(HANGING_DAG)
    fresh_api.env["SLIPSTREAM_DAG_IMPORT_TIMEOUT"] = "30"
    fresh_api.create_user(*ADMIN, "Admin")
    fresh_api.start()
    (server,) = fresh_api.processes
    assert children_of(server.pid) == []
    # On PostgreSQL the module's other server shares this database: compare, don't count.
    before = stored_dags(fresh_api)
    v1 = f"{fresh_api.base}/api/v1/dags/nope"
    experimental = f"{fresh_api.base}/api/experimental/dags/nope/dag_runs"
    for url in (v1, experimental):
        started = time.monotonic()
        response = requests.get(url, auth=ADMIN, timeout=60)
        elapsed = time.monotonic() - started
        if url == v1:
            assert problem(response, 404)["detail"] == "The DAG with dag_id: nope was not found"
        else:
            assert response.status_code == 404, response.text
            assert response.json() == {"error": "Dag id nope not found in DagModel"}
        assert children_of(server.pid) == []
        # A parse would take the 30 s import timeout; a third of it tells the two apart on a
        # busy machine too (a fresh server's first sign-in alone can take a second or two).
        assert elapsed < 10, elapsed
    # Nothing was parsed: not the hanging file, nor the example DAGs beside it.
    after = stored_dags(fresh_api)
    assert after == before
    assert not any(str(row[0]).endswith("hangs.py") for row in after[1])
