"""A DAG with what the Graph tab draws beyond tasks and edges: a task group (with a group
inside it), edge labels, a mapped task and a task that fails, for its server and browser tests."""

from __future__ import annotations

DAG_ID = "graph_demo"
FILE_NAME = "graph_demo.py"
SOURCE = """
from datetime import datetime
from slipstream import DAG, BashOperator, EmptyOperator, Label, TaskGroup, task

with DAG("graph_demo", schedule=None, start_date=datetime(2024, 1, 1), tags=["graph"],
         description="Groups, labels and a mapped task, drawn."):
    start = EmptyOperator(task_id="start")
    with TaskGroup("extract", tooltip="Pull the sources") as extract:
        orders = BashOperator(task_id="orders", bash_command="echo orders")
        with TaskGroup("people") as people:
            customers = BashOperator(task_id="customers", bash_command="echo customers")
            staff = EmptyOperator(task_id="staff")
        orders >> customers
    check = BashOperator(task_id="check_totals", bash_command="echo totals differ; exit 1")
    report = EmptyOperator(task_id="report", trigger_rule="all_done")

    @task
    def batches() -> list[int]:
        return [1, 2, 3]

    @task
    def load(batch: int) -> int:
        return batch * 2

    start >> Label("daily load") >> extract >> Label("once extracted") >> check >> report
    numbers = batches()
    start >> numbers
    load.expand(batch=numbers) >> report
"""
