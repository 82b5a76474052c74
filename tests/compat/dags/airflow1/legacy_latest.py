# Airflow 1.10 style: a daily schedule whose older intervals are caught up (catchup defaults to
# True), with a LatestOnlyOperator letting only the newest interval do the work.
from datetime import timedelta

from airflow import DAG
from airflow.operators.bash_operator import BashOperator
from airflow.operators.latest_only_operator import LatestOnlyOperator
from airflow.utils.dates import days_ago

dag = DAG(
    dag_id="legacy_latest",
    schedule_interval="@daily",
    start_date=days_ago(3),
    default_args={"owner": "ops", "retry_delay": timedelta(seconds=1)},
)

latest = LatestOnlyOperator(task_id="latest_only", dag=dag)
publish = BashOperator(task_id="publish", bash_command="echo published {{ ds }}", dag=dag)
latest >> publish
