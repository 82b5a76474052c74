# Airflow 2: a custom operator subclassing BaseOperator with template_fields, a connection read
# through BaseHook, {{ var }} and {{ conn }} in a template (AIRFLOW_VAR_*/AIRFLOW_CONN_*), and a
# task raising AirflowSkipException.
from datetime import datetime

from airflow import DAG
from airflow.exceptions import AirflowSkipException
from airflow.hooks.base import BaseHook
from airflow.models.baseoperator import BaseOperator
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator
from airflow.utils.context import Context


class GreetOperator(BaseOperator):
    template_fields = ("name",)

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.name = name

    def execute(self, context: Context) -> str:
        message = f"Hello {self.name} on {context['ds']}"
        print(message)
        return message


def describe_connection():
    conn = BaseHook.get_connection("reporting_db")
    return {"host": conn.host, "port": conn.port, "schema": conn.schema, "login": conn.login}


def maybe_skip(dag_run):
    if not dag_run.conf.get("force"):
        raise AirflowSkipException("no force flag given")
    return "forced"


with DAG(
    "custom_operator",
    start_date=datetime(2023, 1, 1),
    schedule_interval=None,
) as dag:
    greet = GreetOperator(task_id="greet", name="{{ dag_run.conf.get('name', 'world') }}")
    conn = PythonOperator(task_id="describe_connection", python_callable=describe_connection)
    skip = PythonOperator(task_id="maybe_skip", python_callable=maybe_skip)
    templated = BashOperator(
        task_id="templated_secrets",
        bash_command="echo {{ var.value.get('report_owner', 'nobody') }} "
        "x{{ var.json.sales_settings.factor }} {{ conn.reporting_db.host }}",
    )
    greet >> [conn, skip, templated]
