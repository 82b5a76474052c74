"""example_bash: templated Bash commands, params with defaults, and a branch."""

from __future__ import annotations

from datetime import datetime

from slipstream import DAG, BashOperator, EmptyOperator, Param, task

with DAG(
    dag_id="example_bash",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    tags=["example"],
    params={
        "greeting": Param("hello", type="string", minLength=1),
        "times": Param(2, type="integer", minimum=1, maximum=10),
    },
) as dag:
    say = BashOperator(
        task_id="say",
        bash_command=(
            'for i in $(seq {{ params.times }}); do echo "{{ params.greeting }} from {{ run_id }}";'
            " done"
        ),
    )

    @task.branch
    def choose(**context: object) -> str:
        params = context["params"]
        assert isinstance(params, dict)
        return "many" if params["times"] > 3 else "few"

    many = EmptyOperator(task_id="many")
    few = BashOperator(task_id="few", bash_command="echo 'only {{ params.times }} times'")
    done = EmptyOperator(task_id="done", trigger_rule="none_failed_min_one_success")

    say >> choose() >> [many, few] >> done
