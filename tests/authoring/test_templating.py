from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import jinja2
import pytest

from slipstream.authoring.context import Context
from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import BashOperator, EmptyOperator, PythonOperator
from slipstream.authoring.task import BaseOperator
from slipstream.authoring.templating import make_environment, render_template
from tests.authoring.fakes import context_for


class Templated(BaseOperator):
    template_fields: ClassVar[tuple[str, ...]] = ("text", "items", "mapping", "number")

    def __init__(self, *, text: Any = "", items: Any = None, mapping: Any = None, **kw: Any):
        super().__init__(**kw)
        self.text = text
        self.items = items
        self.mapping = mapping
        self.number = 7

    def execute(self, context: Context) -> Any:
        return self.text


def rendered(text: str, *, dag: DAG | None = None, **kwargs: Any) -> Any:
    with dag or DAG("t"):
        op = Templated(task_id="t", text=text)
    op.render_template_fields(context_for(op, **kwargs))
    return op.text


def test_context_variables() -> None:
    expected = "2024-03-05 20240305 manual__2024-03-05"
    assert rendered("{{ ds }} {{ ds_nodash }} {{ run_id }}") == expected
    assert rendered("{{ ts }}|{{ ts_nodash }}|{{ ts_nodash_with_tz }}") == (
        "2024-03-05T06:07:08+00:00|20240305T060708|20240305T060708+0000"
    )
    assert rendered("{{ logical_date.year }} {{ execution_date.month }}") == "2024 3"
    assert rendered("{{ dag.dag_id }}.{{ task.task_id }} try {{ try_number }}") == "t.t try 1"


def test_dag_run_conf_and_params() -> None:
    assert rendered('{{ dag_run.conf["k"] }}', conf={"k": "v"}) == "v"
    with_params = DAG("t", params={"k": "default"})
    assert rendered("{{ params.k }}/{{ params['k'] }}", dag=with_params) == "default/default"
    with_params = DAG("t", params={"k": "default"})
    assert rendered("{{ params.k }}", dag=with_params, conf={"k": "given"}) == "given"


def test_xcom_pull_in_a_template() -> None:
    xcoms = {("up", "return_value"): "hello", ("up", "other"): 3}
    text = "{{ ti.xcom_pull(task_ids='up') }} {{ ti.xcom_pull(task_ids='up', key='other') }}"
    assert rendered(text, xcoms=xcoms) == "hello 3"


def test_macros() -> None:
    assert rendered("{{ macros.ds_add(ds, 5) }}") == "2024-03-10"
    assert rendered("{{ macros.ds_add(ds, -5) }}") == "2024-02-29"
    assert rendered("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%y') }}") == "05/03/24"
    assert rendered("{{ macros.json.dumps({'a': 1}) }}") == '{"a": 1}'
    assert rendered("{{ (macros.datetime(2024, 1, 2) + macros.timedelta(days=1)).day }}") == "3"
    assert len(rendered("{{ macros.uuid.uuid4() }}")) == 36
    assert 0 <= float(rendered("{{ macros.random() }}")) < 1
    assert float(rendered("{{ macros.time.time() }}")) > 0


def test_user_defined_macros_and_filters() -> None:
    dag = DAG(
        "t",
        user_defined_macros={"project": "acme", "shout": str.upper},
        user_defined_filters={"twice": lambda s: s * 2},
    )
    assert rendered("{{ shout(project) }}{{ 'ab' | twice }}", dag=dag) == "ACMEabab"


def test_undefined_names_fail_loudly() -> None:
    with pytest.raises(jinja2.UndefinedError):
        rendered("{{ nope }}")


def test_containers_are_rendered_recursively_and_other_values_left_alone() -> None:
    with DAG("t"):
        op = Templated(
            task_id="t",
            items=["{{ ds }}", ("{{ ds_nodash }}", 1), {"{{ try_number }}"}],
            mapping={"{{ key }}": {"nested": "{{ run_id }}"}, "n": None},
        )
    op.render_template_fields(context_for(op))
    assert op.items == ["2024-03-05", ("20240305", 1), {"1"}]
    assert op.mapping == {"{{ key }}": {"nested": "manual__2024-03-05"}, "n": None}
    assert op.number == 7


def test_native_rendering() -> None:
    native = DAG("t", render_template_as_native_obj=True)
    assert rendered("{{ [1, 2] + [3] }}", dag=native) == [1, 2, 3]
    assert rendered("{{ [1, 2] + [3] }}") == "[1, 2, 3]"


def test_template_search_path_and_dag_folder(tmp_path: Path) -> None:
    (tmp_path / "query.sql").write_text("select '{{ ds }}'")
    env = make_environment(searchpath=[str(tmp_path)])
    assert render_template("query.sql", {"ds": "x"}, env, template_ext=[".sql"]) == "select 'x'"
    assert render_template("query.sql", {}, env) == "query.sql"  # no ext: a plain string
    dag = DAG("t", fileloc=str(tmp_path / "dag.py"))
    assert dag.get_template_env() is dag.get_template_env()
    assert dag.get_template_env().loader is not None


def test_templates_dict_and_operators_without_template_fields() -> None:
    with DAG("t"):
        empty = EmptyOperator(task_id="e")
        python = PythonOperator(
            task_id="p", python_callable=print, templates_dict={"a": "{{ ds }}"}
        )
        bash = BashOperator(task_id="b", bash_command="echo {{ ds }}", env={"X": "{{ ds_nodash }}"})
    for op in (empty, python, bash):
        op.render_template_fields(context_for(op))
    assert python.templates_dict == {"a": "2024-03-05"}
    assert (bash.bash_command, bash.env) == ("echo 2024-03-05", {"X": "20240305"})


def test_a_task_without_a_dag_renders_with_a_default_environment() -> None:
    op = Templated(task_id="alone", text="{{ x }}")
    op.render_template_fields({"x": 1})
    assert op.text == "1"


def test_airflow_date_filters_format_any_datetime() -> None:
    text = (
        "{{ logical_date | ds }} {{ logical_date | ds_nodash }} {{ logical_date | ts }} "
        "{{ logical_date | ts_nodash }} {{ logical_date | ts_nodash_with_tz }}"
    )
    assert rendered(text) == (
        "2024-03-05 20240305 2024-03-05T06:07:08+00:00 20240305T060708 20240305T060708+0000"
    )
    # Filters take any datetime, not just the run's (here a macro's result), and pass None on.
    assert rendered("{{ macros.datetime(2020, 1, 2, 3, 4, 5) | ts_nodash }}") == ("20200102T030405")
    assert (
        rendered(
            "{{ none | ds }}|{{ none | ts }}", dag=DAG("t", user_defined_macros={"none": None})
        )
        == "None|None"
    )


def test_a_user_filter_replaces_an_airflow_filter_of_the_same_name() -> None:
    dag = DAG("t", user_defined_filters={"ds": lambda value: "mine"})
    assert rendered("{{ logical_date | ds }}", dag=dag) == "mine"


def test_templates_exts_makes_python_arguments_name_template_files(tmp_path: Path) -> None:
    (tmp_path / "query.sql").write_text("SELECT '{{ ds }}'\n")
    with DAG("t", template_searchpath=[str(tmp_path)]):
        python = PythonOperator(
            task_id="p",
            python_callable=print,
            templates_exts=[".sql"],
            op_args=["query.sql"],
            op_kwargs={"q": "query.sql", "inline": "{{ ds_nodash }}"},
            templates_dict={"file": "query.sql"},
        )
        plain = PythonOperator(task_id="plain", python_callable=print, op_args=["query.sql"])
    for op in (python, plain):
        op.render_template_fields(context_for(op))
    assert python.op_args == ["SELECT '2024-03-05'\n"]
    assert python.op_kwargs == {"q": "SELECT '2024-03-05'\n", "inline": "20240305"}
    assert python.templates_dict == {"file": "SELECT '2024-03-05'\n"}
    assert plain.op_args == ["query.sql"]  # without templates_exts the name is just a string


def test_task_decorator_passes_templates_exts_on(tmp_path: Path) -> None:
    from slipstream.authoring.taskflow import task

    (tmp_path / "query.sql").write_text("{{ ds_nodash }}")
    with DAG("t", template_searchpath=[str(tmp_path)]) as dag:

        @task(templates_exts=[".sql"])
        def run(query: str) -> str:
            return query

        run("query.sql")
    op = dag.task_dict["run"]
    op.render_template_fields(context_for(op))
    assert op.op_args == ["20240305"]  # type: ignore[attr-defined]


def test_a_param_nobody_gave_fails_rendering_as_in_airflow() -> None:
    # Airflow 2.0+ renders with StrictUndefined and params misses fall through to it: the task
    # fails ("'dict object' has no attribute 'foo'" in Airflow 3) rather than rendering "".
    def dag() -> DAG:
        return DAG("t", params={"miff": "agg"})

    with pytest.raises(jinja2.UndefinedError, match="foo"):
        rendered("{{ params.foo }}", dag=dag())
    assert rendered("{{ params.foo | default('') }}|{{ params.miff }}", dag=dag()) == "|agg"
    assert rendered("{{ params.get('foo', 'none') }}", dag=dag()) == "none"
    assert rendered("{{ params.foo }}", dag=dag(), conf={"foo": "bar"}) == "bar"
