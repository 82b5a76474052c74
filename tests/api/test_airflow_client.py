"""Airflow's own Python client (apache-airflow-client 2.x) against a real server: it validates
response types strictly, so a trigger and a read that deserialize prove our field names,
types and nullability match Airflow 2.10's."""

from __future__ import annotations

import pytest
from airflow_client.client import ApiClient, Configuration
from airflow_client.client.api import dag_run_api, task_instance_api
from airflow_client.client.model.dag_run import DAGRun

from tests.api.conftest import ApiServer, wait_for

pytestmark = pytest.mark.slow

USER = ("client_user", "Cl1ent-pass-word")


def test_trigger_and_read_back_with_apache_airflow_client(api: ApiServer) -> None:
    api.create_user(*USER, "User")
    api.start_scheduler()
    configuration = Configuration(host=f"{api.base}/api/v1", username=USER[0], password=USER[1])
    with ApiClient(configuration) as client:
        runs = dag_run_api.DAGRunApi(client)
        created = runs.post_dag_run("my_dag", DAGRun(conf={"key": "value"}, note="via client"))
        assert created.dag_id == "my_dag"
        assert created.conf == {"key": "value"}
        assert created.note == "via client"
        run_id = created.dag_run_id

        def finished() -> DAGRun | None:
            run = runs.get_dag_run("my_dag", run_id)
            return run if str(run.state) in ("success", "failed") else None

        run = wait_for(finished, 60, "the run to finish")
        assert isinstance(run, DAGRun)
        assert str(run.state) == "success"
        assert run.logical_date == created.logical_date
        assert run.end_date is not None
        listed = runs.get_dag_runs("my_dag", order_by="-execution_date", limit=5)
        assert run_id in [r.dag_run_id for r in listed.dag_runs]
        tasks = task_instance_api.TaskInstanceApi(client)
        instances = tasks.get_task_instances("my_dag", run_id)
        assert [ti.task_id for ti in instances.task_instances] == ["show_conf"]
        one = tasks.get_task_instance("my_dag", run_id, "show_conf")
        assert str(one.state) == "success" and one.try_number == 1
        log = tasks.get_log("my_dag", run_id, "show_conf", 1, full_content=True)
        assert "Triggered with conf" in log.content
