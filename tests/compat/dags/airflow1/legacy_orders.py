# An Airflow 1.10 style DAG: module-level `dag`, dag= on every operator, provide_context,
# schedule_interval, days_ago and the 1.10 module names.
from datetime import timedelta

from airflow import DAG
from airflow.operators.bash_operator import BashOperator
from airflow.operators.dummy_operator import DummyOperator
from airflow.operators.python_operator import BranchPythonOperator, PythonOperator
from airflow.utils.dates import days_ago

default_args = {
    "owner": "data-eng",
    "depends_on_past": False,
    "retries": 1,
    "retry_delay": timedelta(seconds=1),
    "provide_context": True,
}

dag = DAG(
    "legacy_orders",
    default_args=default_args,
    description="Orders, the 1.10 way",
    schedule_interval=None,
    start_date=days_ago(2),
)


def fetch_orders(**kwargs):
    kwargs["ti"].xcom_push(key="orders", value=[4, 7, 9])
    return "fetched"


def pick_route(**kwargs):
    orders = kwargs["ti"].xcom_pull(task_ids="fetch_orders", key="orders")
    return "big_batch" if sum(orders) > 10 else "small_batch"


def summarize(ds, **kwargs):
    orders = kwargs["ti"].xcom_pull(task_ids="fetch_orders", key="orders")
    # key=None: each task's newest XCom, whatever its key (its return value counts as last).
    newest = kwargs["ti"].xcom_pull(key=None, task_ids=["fetch_orders", "big_batch"])
    return {"count": len(orders), "total": sum(orders), "day": ds, "newest": newest}


fetch = PythonOperator(
    task_id="fetch_orders", python_callable=fetch_orders, provide_context=True, dag=dag
)
route = BranchPythonOperator(
    task_id="pick_route", python_callable=pick_route, provide_context=True, dag=dag
)
big = BashOperator(
    task_id="big_batch",
    bash_command="echo \"big batch of {{ ti.xcom_pull(task_ids='fetch_orders', key='orders') | sum }}\"",
    dag=dag,
)
small = DummyOperator(task_id="small_batch", dag=dag)
join = DummyOperator(task_id="join", trigger_rule="none_failed_or_skipped", dag=dag)
report = PythonOperator(task_id="summarize", python_callable=summarize, dag=dag)

fetch >> route >> [big, small]
big >> join
small >> join
join >> report
