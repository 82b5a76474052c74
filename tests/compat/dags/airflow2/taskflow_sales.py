# Airflow 2 TaskFlow: @dag/@task from airflow.decorators, pendulum dates, multiple_outputs,
# Variables from the environment, params and get_current_context.
import json

import pendulum
from airflow.decorators import dag, task
from airflow.models import Variable
from airflow.operators.python import get_current_context


@dag(
    schedule=None,
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sales"],
    params={"region": "emea"},
)
def taskflow_sales():
    """Daily sales, TaskFlow style."""

    @task()
    def extract():
        raw = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'
        return json.loads(raw)

    @task(multiple_outputs=True)
    def transform(orders: dict):
        total = round(sum(orders.values()), 2)
        return {"total": total, "count": len(orders)}

    @task()
    def load(total: float, count: int):
        context = get_current_context()
        table = Variable.get("sales_table", default_var="sales_default")
        settings = Variable.get("sales_settings", deserialize_json=True)
        region = context["params"]["region"]
        return f"{count} orders, {total} into {table} ({region}, x{settings['factor']})"

    summary = transform(extract())
    load(summary["total"], summary["count"])


taskflow_sales()
