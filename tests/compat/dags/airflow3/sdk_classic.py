# Airflow 3: DAG from airflow.sdk, operators from the standard provider, a timezone-aware
# start date, catchup defaulting to False, and LatestOnlyOperator on a daily schedule.
import pendulum
from airflow.exceptions import AirflowSkipException
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.latest_only import LatestOnlyOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, TriggerRule


def skip_on_manual(dag_run):
    if dag_run.run_type == "manual":
        raise AirflowSkipException("manual runs do not archive")
    return "archived"


with DAG(
    "sdk_classic",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Amsterdam"),
    tags=["standard-provider"],
) as dag:
    latest = LatestOnlyOperator(task_id="latest_only")
    report = BashOperator(task_id="report", bash_command="echo report for {{ ds }}")
    archive = PythonOperator(task_id="archive", python_callable=skip_on_manual)
    done = EmptyOperator(task_id="done", trigger_rule=TriggerRule.ALL_DONE)
    latest >> report >> archive >> done
