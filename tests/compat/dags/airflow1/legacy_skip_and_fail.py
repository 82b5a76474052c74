# Airflow 1.10 style exceptions: skip, fail without retry, and a plain failure that retries.
from datetime import timedelta

from airflow import DAG
from airflow.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.operators.python_operator import PythonOperator
from airflow.utils.dates import days_ago

dag = DAG(
    "legacy_skip_and_fail",
    schedule_interval=None,
    start_date=days_ago(1),
    default_args={"retries": 2, "retry_delay": timedelta(seconds=0)},
)


def skip_it():
    raise AirflowSkipException("nothing to do today")


def fail_now():
    raise AirflowFailException("bad input: retrying will not help")


def flaky(**context):
    raise AirflowException("try %s failed" % context["ti"].try_number)


PythonOperator(task_id="skip_it", python_callable=skip_it, dag=dag)
PythonOperator(task_id="fail_now", python_callable=fail_now, dag=dag)
PythonOperator(task_id="flaky", python_callable=flaky, retries=1, dag=dag)
