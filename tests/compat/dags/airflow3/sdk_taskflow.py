# Airflow 3: everything from airflow.sdk; @task.branch, @task.short_circuit, @task.bash,
# Param with a schema, Variable.get(default=...), and chain.
import pendulum
from airflow.sdk import Param, Variable, chain, dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    params={"threshold": Param(5, type="integer", minimum=0)},
)
def sdk_taskflow():
    @task
    def measure() -> int:
        return int(Variable.get("sdk_measure", default="7"))

    @task.branch
    def route(value: int, params=None) -> str:
        return "high" if value > params["threshold"] else "low"

    @task
    def high(value: int) -> str:
        return f"high:{value}"

    @task
    def low(value: int) -> str:
        return f"low:{value}"

    @task.short_circuit(trigger_rule="none_failed_min_one_success")
    def keep_going() -> bool:
        return True

    @task.bash
    def shout(value: int) -> str:
        return f"echo measured {value} at {{{{ ds }}}}"

    value = measure()
    chain(route(value), [high(value), low(value)], keep_going(), shout(value))


sdk_taskflow()
