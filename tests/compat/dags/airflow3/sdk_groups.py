# Airflow 3: @task_group taking an XComArg and returning one, task ids prefixed by the group,
# and an on_failure_callback that a failing task calls with the exception.
import pendulum
from airflow.sdk import dag, task, task_group


def report_failure(context):
    print(f"alert: {context['task_instance'].task_id} failed with {context['exception']!r}")


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"))
def sdk_groups():
    @task
    def start() -> int:
        return 21

    @task_group(group_id="score")
    def score(n: int):
        @task
        def double(x: int) -> int:
            return x * 2

        @task
        def label(x: int) -> str:
            return f"score={x}"

        return label(double(n))

    @task
    def publish(text: str) -> str:
        return text.upper()

    @task(on_failure_callback=report_failure, trigger_rule="all_done")
    def audit(text: str) -> None:
        raise ValueError(f"audit rejected {text}")

    published = publish(score(start()))
    audit(published)


sdk_groups()
