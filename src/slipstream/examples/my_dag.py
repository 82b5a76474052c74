"""my_dag: logs and returns the conf it was triggered with.

This is the DAG from the Airflow 1.10 story Slipstream starts from: trigger it over HTTP or from
the CLI with a conf, e.g. `slipstream dags trigger my_dag --conf '{"key": "value"}'`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slipstream import dag, task

log = logging.getLogger(__name__)


@dag(
    dag_id="my_dag",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example"],
    description="Logs and returns the conf it was triggered with.",
)
def my_dag() -> None:
    @task
    def show_conf(**context: Any) -> dict[str, Any]:
        conf = dict(context["dag_run"].conf)
        log.info("Triggered with conf: %s", conf)
        return conf

    show_conf()


my_dag()
