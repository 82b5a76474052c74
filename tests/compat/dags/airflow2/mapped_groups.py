# Airflow 2.5+: a mapped task group (@task_group .partial().expand()) over an upstream XCom,
# a classic operator inside it reading the group's argument, a branch deciding per file, and
# a task after the group receiving every file's result.
from datetime import datetime

from airflow import DAG
from airflow.decorators import task, task_group
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="mapped_groups",
    start_date=datetime(2024, 1, 1),
    schedule_interval=None,
    catchup=False,
) as dag:

    @task
    def list_files():
        return ["a.csv", "b.json", "c.csv"]

    @task_group(group_id="process")
    def process(filename, bucket):
        copy = BashOperator(
            task_id="copy",
            bash_command='echo "copied $FILE to $BUCKET"',
            env={"FILE": filename, "BUCKET": bucket},
        )

        @task.branch
        def route(name):
            return "process.load_csv" if name.endswith(".csv") else "process.load_other"

        @task
        def load_csv(copied):
            return f"csv <{copied}>"

        @task
        def load_other(copied):
            return f"other <{copied}>"

        @task(trigger_rule="none_failed_min_one_success")
        def finish(ti=None):
            loaded = ti.xcom_pull(task_ids=["process.load_csv", "process.load_other"])
            return next(value for value in loaded if value)

        routed = route(filename)
        copy >> routed
        done = finish()
        routed >> [load_csv(copy.output), load_other(copy.output)] >> done
        return done

    @task
    def summarize(results):
        return list(results)

    summarize(process.partial(bucket="archive").expand(filename=list_files()))
