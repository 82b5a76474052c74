"""my_dag: logs and returns the conf it was triggered with.

This is the DAG from the Airflow 1.10 story Slipstream starts from: trigger it over HTTP or from
the CLI with a conf, e.g. `slipstream dags trigger my_dag --conf '{"key": "value"}'`, or from
the web UI's trigger form, made from the params below. Keys of the conf that declare no param
(such as "key") are the run's own, as in Airflow.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slipstream import Param, dag, task

log = logging.getLogger(__name__)


@dag(
    dag_id="my_dag",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example"],
    description="Logs and returns the conf it was triggered with.",
    params={
        "message": Param(
            "hello",
            type="string",
            minLength=1,
            maxLength=200,
            title="Message",
            description="Logged by the task, with the rest of the conf.",
        ),
        "repeat": Param(
            1,
            type="integer",
            minimum=1,
            maximum=5,
            title="Repeat",
            description="How many times the task logs the message.",
        ),
    },
)
def my_dag() -> None:
    @task
    def show_conf(**context: Any) -> dict[str, Any]:
        conf = dict(context["dag_run"].conf)
        log.info("Triggered with conf: %s", conf)
        params = context["params"]
        for _ in range(params["repeat"]):
            log.info("Message: %s", params["message"])
        return conf

    show_conf()


my_dag()
