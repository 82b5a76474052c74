# Airflow 2: TaskGroups (nested, with tooltips), an edge Label, and callbacks from default_args.
from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator
from airflow.utils.edgemodifier import Label
from airflow.utils.task_group import TaskGroup


def announce(context):
    print(f"callback: {context['task_instance'].task_id} succeeded")


with DAG(
    "grouped_callbacks",
    schedule_interval=None,
    start_date=datetime(2023, 1, 1),
    default_args={"on_success_callback": announce},
) as dag:
    with TaskGroup("extract", tooltip="pull the sources") as extract:
        BashOperator(task_id="orders", bash_command="echo orders extracted")
        with TaskGroup("crm") as crm:
            BashOperator(task_id="customers", bash_command="echo customers extracted")
    with TaskGroup("load") as load:
        PythonOperator(task_id="warehouse", python_callable=lambda: "loaded")
    extract >> Label("when both are in") >> load
