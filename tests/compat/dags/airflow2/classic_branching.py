# Airflow 2 classic operators: `with DAG`, templates with params and conf, branching,
# short-circuit, trigger rules and chain().
import pendulum
from airflow import DAG
from airflow.models.baseoperator import chain
from airflow.models.param import Param
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
)
from airflow.utils.trigger_rule import TriggerRule


def choose(params):
    return "weekday_path" if params["mode"] == "weekday" else "weekend_path"


with DAG(
    dag_id="classic_branching",
    schedule_interval=None,
    start_date=pendulum.datetime(2022, 6, 1, tz="Europe/Amsterdam"),
    params={"mode": Param("weekday", enum=["weekday", "weekend"]), "greeting": "hello"},
    default_args={"owner": "analytics"},
    tags=["branching"],
) as dag:
    start = EmptyOperator(task_id="start")
    greet = BashOperator(
        task_id="greet",
        bash_command='echo \'{{ params.greeting }} from {{ dag.dag_id }} ({{ dag_run.conf.get("who", "nobody") }})\'',
    )
    branch = BranchPythonOperator(task_id="branch", python_callable=choose)
    weekday = PythonOperator(task_id="weekday_path", python_callable=lambda: "work")
    weekend = PythonOperator(task_id="weekend_path", python_callable=lambda: "rest")
    merge = EmptyOperator(task_id="merge", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    gate = ShortCircuitOperator(task_id="gate", python_callable=lambda: False)
    never = BashOperator(task_id="never", bash_command="echo should not run")
    cleanup = BashOperator(
        task_id="cleanup", bash_command="echo cleaned", trigger_rule=TriggerRule.ALL_DONE
    )

    chain(start, greet, branch, [weekday, weekend])
    [weekday, weekend] >> merge >> gate >> never
    merge >> cleanup
