"""Mapped task instances over /api/v1, read with Airflow's own client (apache-airflow-client
2.10, strict about types): listMapped with its filters and ordering, one instance by map
index, its log, and Airflow's 404s; the same for the tasks of a mapped task group."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator

import pytest
import requests
from airflow_client.client import ApiClient, Configuration
from airflow_client.client.api import dag_run_api, task_instance_api, x_com_api
from airflow_client.client.exceptions import NotFoundException
from airflow_client.client.model.dag_run import DAGRun
from airflow_client.client.model.update_task_instance import UpdateTaskInstance
from airflow_client.client.model.update_task_state import UpdateTaskState

from tests.api.conftest import ApiServer, wait_for

pytestmark = pytest.mark.slow

USER = ("mapper", "Mapp3r-pass-word")

MAPPED_DAG = """
from datetime import datetime
from slipstream import DAG, task

with DAG("mapped_api", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def letters():
        return ["a", "b", "c"]

    @task
    def shout(letter, **context):
        print(f"shouting {letter} at index {context['ti'].map_index}")
        return letter.upper()

    @task
    def join(values):
        return "".join(values)

    join(shout.expand(letter=letters()))
"""


GROUP_DAG = """
from datetime import datetime
from slipstream import DAG, task, task_group

with DAG("mapped_group_api", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def letters():
        return ["a", "b", "c"]

    @task_group
    def words(letter):
        @task
        def shout(letter, **context):
            print(f"group shouting {letter} at index {context['ti'].map_index}")
            return letter.upper()

        @task
        def twice(text):
            return text * 2

        return twice(shout(letter))

    @task
    def join(values):
        return "".join(values)

    join(words.expand(letter=letters()))
"""


@pytest.fixture(scope="module")
def client(api: ApiServer) -> Iterator[ApiClient]:
    (api.home / "dags" / "mapped_api.py").write_text(textwrap.dedent(MAPPED_DAG))
    (api.home / "dags" / "mapped_group_api.py").write_text(textwrap.dedent(GROUP_DAG))
    api.sync_dags()
    api.create_user(*USER, "User")
    api.start_scheduler()
    configuration = Configuration(host=f"{api.base}/api/v1", username=USER[0], password=USER[1])
    with ApiClient(configuration) as opened:
        yield opened


@pytest.fixture(scope="module")
def run_id(client: ApiClient) -> str:
    runs = dag_run_api.DAGRunApi(client)
    created = runs.post_dag_run("mapped_api", DAGRun())

    def finished() -> str | None:
        state = str(runs.get_dag_run("mapped_api", created.dag_run_id).state)
        return state if state in ("success", "failed") else None

    assert wait_for(finished, 60, "the mapped run to finish") == "success"
    return str(created.dag_run_id)


def test_the_dag_s_tasks_say_which_are_mapped(client: ApiClient, api: ApiServer) -> None:
    # Read with requests: Airflow 2.10's client refuses the `sub_dag: null` that Airflow itself
    # serves for every task, so get_tasks cannot be called through it against either server.
    for dag_id, mapped in (
        ("mapped_api", {"letters": False, "shout": True, "join": False}),
        (
            "mapped_group_api",
            {"letters": False, "words.shout": True, "words.twice": True, "join": False},
        ),
    ):
        response = requests.get(f"{api.base}/api/v1/dags/{dag_id}/tasks", auth=USER, timeout=30)
        assert response.status_code == 200, response.text
        tasks = response.json()["tasks"]
        assert {t["task_id"]: t["is_mapped"] for t in tasks} == mapped, dag_id
        assert {t["class_ref"]["module_path"] for t in tasks} == {"slipstream.authoring.taskflow"}


def test_list_mapped_instances_with_filters_and_ordering(client: ApiClient, run_id: str) -> None:
    tasks = task_instance_api.TaskInstanceApi(client)
    listed = tasks.get_mapped_task_instances("mapped_api", run_id, "shout")
    assert listed.total_entries == 3
    assert [(t.map_index, str(t.state)) for t in listed.task_instances] == [
        (0, "success"),
        (1, "success"),
        (2, "success"),
    ]
    newest_first = tasks.get_mapped_task_instances(
        "mapped_api", run_id, "shout", order_by="-map_index", limit=2, offset=0
    )
    assert [t.map_index for t in newest_first.task_instances] == [2, 1]
    assert newest_first.total_entries == 3
    none_failed = tasks.get_mapped_task_instances("mapped_api", run_id, "shout", state=["failed"])
    assert none_failed.total_entries == 0 and none_failed.task_instances == []
    every = tasks.get_task_instances("mapped_api", run_id)
    assert sorted((t.task_id, t.map_index) for t in every.task_instances) == [
        ("join", -1),
        ("letters", -1),
        ("shout", 0),
        ("shout", 1),
        ("shout", 2),
    ]


def test_one_mapped_instance_and_its_log(client: ApiClient, run_id: str) -> None:
    tasks = task_instance_api.TaskInstanceApi(client)
    one = tasks.get_mapped_task_instance("mapped_api", run_id, "shout", 1)
    assert (one.task_id, one.map_index, str(one.state), one.try_number) == (
        "shout",
        1,
        "success",
        1,
    )
    log = tasks.get_log("mapped_api", run_id, "shout", 1, map_index=1, full_content=True)
    assert "shouting b at index 1" in log.content
    assert "shouting a" not in log.content
    unmapped = tasks.get_mapped_task_instance("mapped_api", run_id, "join", -1)
    assert unmapped.map_index == -1 and str(unmapped.state) == "success"


def test_xcom_entries_per_map_index(client: ApiClient, run_id: str) -> None:
    xcoms = x_com_api.XComApi(client)
    every = xcoms.get_xcom_entries("mapped_api", run_id, "shout")
    assert every.total_entries == 3
    assert [(e.map_index, e.key) for e in every.xcom_entries] == [
        (0, "return_value"),
        (1, "return_value"),
        (2, "return_value"),
    ]
    second = xcoms.get_xcom_entries("mapped_api", run_id, "shout", map_index=1)
    assert [e.map_index for e in second.xcom_entries] == [1]
    entry = xcoms.get_xcom_entry("mapped_api", run_id, "shout", "return_value", map_index=2)
    assert (entry.map_index, entry.value) == (2, "C")
    joined = xcoms.get_xcom_entry("mapped_api", run_id, "join", "return_value")
    assert (joined.map_index, joined.value) == (-1, "ABC")
    with pytest.raises(NotFoundException):
        xcoms.get_xcom_entry("mapped_api", run_id, "shout", "return_value")


def test_airflow_s_404s_for_mapped_routes(client: ApiClient, run_id: str) -> None:
    tasks = task_instance_api.TaskInstanceApi(client)
    with pytest.raises(NotFoundException) as without_index:
        tasks.get_task_instance("mapped_api", run_id, "shout")
    assert "add the map_index value to the URL" in json.loads(without_index.value.body)["detail"]
    with pytest.raises(NotFoundException):
        tasks.get_mapped_task_instance("mapped_api", run_id, "shout", 3)
    with pytest.raises(NotFoundException) as not_mapped:
        tasks.get_mapped_task_instances("mapped_api", run_id, "join")
    assert "Task id join is not mapped" in json.loads(not_mapped.value.body)["detail"]
    with pytest.raises(NotFoundException) as unknown:
        tasks.get_mapped_task_instances("mapped_api", run_id, "nope")
    assert "Task id nope not found" in json.loads(unknown.value.body)["detail"]
    with pytest.raises(NotFoundException):
        tasks.get_log("mapped_api", run_id, "shout", 1, map_index=7)


def test_marking_one_instance(client: ApiClient, run_id: str) -> None:
    tasks = task_instance_api.TaskInstanceApi(client)
    marked = tasks.patch_mapped_task_instance(
        "mapped_api",
        run_id,
        "shout",
        2,
        update_task_instance=UpdateTaskInstance(dry_run=False, new_state=UpdateTaskState("failed")),
    )
    assert marked.task_id == "shout"
    states = {
        t.map_index: str(t.state)
        for t in tasks.get_mapped_task_instances("mapped_api", run_id, "shout").task_instances
    }
    assert states == {0: "success", 1: "success", 2: "failed"}


def test_clearing_one_instance_by_task_id_and_map_index(
    client: ApiClient, api: ApiServer, run_id: str
) -> None:
    response = requests.post(
        f"{api.base}/api/v1/dags/mapped_api/clearTaskInstances",
        json={
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [["shout", 2]],
            "only_failed": False,
        },
        auth=USER,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    cleared = response.json()["task_instances"]
    assert [t["task_id"] for t in cleared] == ["shout"]
    tasks = task_instance_api.TaskInstanceApi(client)

    def rerun() -> object:
        again = tasks.get_mapped_task_instance("mapped_api", run_id, "shout", 2)
        return again if str(again.state) == "success" else None

    again = wait_for(rerun, 60, "the cleared instance to run again")
    assert again.try_number == 2  # type: ignore[attr-defined]
    first = tasks.get_mapped_task_instance("mapped_api", run_id, "shout", 0)
    assert first.try_number == 1


# ----------------------------------------------------------------- a mapped task group


@pytest.fixture(scope="module")
def group_run_id(client: ApiClient) -> str:
    runs = dag_run_api.DAGRunApi(client)
    created = runs.post_dag_run("mapped_group_api", DAGRun())

    def finished() -> str | None:
        state = str(runs.get_dag_run("mapped_group_api", created.dag_run_id).state)
        return state if state in ("success", "failed") else None

    assert wait_for(finished, 60, "the mapped group's run to finish") == "success"
    return str(created.dag_run_id)


def test_a_mapped_group_s_tasks_are_listed_read_and_logged_by_map_index(
    client: ApiClient, group_run_id: str
) -> None:
    tasks = task_instance_api.TaskInstanceApi(client)
    listed = tasks.get_mapped_task_instances("mapped_group_api", group_run_id, "words.twice")
    assert [(t.map_index, str(t.state)) for t in listed.task_instances] == [
        (0, "success"),
        (1, "success"),
        (2, "success"),
    ]
    every = tasks.get_task_instances("mapped_group_api", group_run_id)
    assert sorted((t.task_id, t.map_index) for t in every.task_instances) == [
        ("join", -1),
        ("letters", -1),
        *[("words.shout", i) for i in range(3)],
        *[("words.twice", i) for i in range(3)],
    ]
    one = tasks.get_mapped_task_instance("mapped_group_api", group_run_id, "words.shout", 1)
    assert (one.map_index, str(one.state), one.try_number) == (1, "success", 1)
    log = tasks.get_log(
        "mapped_group_api", group_run_id, "words.shout", 1, map_index=1, full_content=True
    )
    assert "group shouting b at index 1" in log.content
    xcoms = x_com_api.XComApi(client)
    entry = xcoms.get_xcom_entry(
        "mapped_group_api", group_run_id, "words.twice", "return_value", map_index=2
    )
    assert entry.value == "CC"
    joined = xcoms.get_xcom_entry("mapped_group_api", group_run_id, "join", "return_value")
    assert joined.value == "AABBCC"


def test_clearing_one_index_of_a_mapped_group_with_its_downstream(
    client: ApiClient, api: ApiServer, group_run_id: str
) -> None:
    response = requests.post(
        f"{api.base}/api/v1/dags/mapped_group_api/clearTaskInstances",
        json={
            "dry_run": False,
            "dag_run_id": group_run_id,
            "task_ids": [["words.shout", 1]],
            "include_downstream": True,
            "only_failed": False,
        },
        auth=USER,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    # As Airflow: the named index, and every instance of what is downstream of it (Airflow's
    # references name no map index).
    cleared = sorted(t["task_id"] for t in response.json()["task_instances"])
    assert cleared == ["join", "words.shout", "words.twice", "words.twice", "words.twice"]
    runs = dag_run_api.DAGRunApi(client)

    def rerun() -> str | None:
        state = str(runs.get_dag_run("mapped_group_api", group_run_id).state)
        return state if state in ("success", "failed") else None

    assert wait_for(rerun, 60, "the cleared run to finish again") == "success"
    tasks = task_instance_api.TaskInstanceApi(client)
    tries = {
        (t.task_id, t.map_index): t.try_number
        for t in tasks.get_task_instances("mapped_group_api", group_run_id).task_instances
    }
    assert [tries["words.shout", i] for i in range(3)] == [1, 2, 1]
    assert [tries["words.twice", i] for i in range(3)] == [2, 2, 2]
    joined = x_com_api.XComApi(client).get_xcom_entry(
        "mapped_group_api", group_run_id, "join", "return_value"
    )
    assert joined.value == "AABBCC"
