from __future__ import annotations

import inspect
import pickle
import sys
import textwrap
from pathlib import Path

import pytest

from slipstream.authoring.loading import load_dags_from_file, module_name_for


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def test_with_block_dag_that_is_not_assigned_is_found(tmp_path: Path) -> None:
    path = write(
        tmp_path / "unassigned.py",
        """
        from slipstream import DAG, EmptyOperator

        def build(name):
            with DAG(name):
                EmptyOperator(task_id="only")

        for name in ("first", "second"):
            build(name)
        """,
    )
    dags = load_dags_from_file(path)
    assert [d.dag_id for d in dags] == ["first", "second"]
    assert all(d.fileloc == str(path.resolve()) for d in dags)


def test_dag_decorator_called_at_module_level_is_found_once(tmp_path: Path) -> None:
    path = write(
        tmp_path / "decorated.py",
        """
        from slipstream import dag, task

        @dag(schedule=None)
        def decorated():
            @task
            def hello():
                return "hi"
            hello()

        decorated_dag = decorated()
        also = decorated_dag
        """,
    )
    dags = load_dags_from_file(path)
    assert [d.dag_id for d in dags] == ["decorated"]
    assert dags[0].task_ids == ["hello"]
    assert dags[0].fileloc == str(path.resolve())


def test_module_is_importable_by_name_for_pickle_and_inspect(tmp_path: Path) -> None:
    path = write(
        tmp_path / "picklable.py",
        """
        from slipstream import DAG

        def helper(x):
            return x + 1

        dag = DAG("picklable")
        """,
    )
    load_dags_from_file(path)
    module = sys.modules[module_name_for(path)]
    assert module.__file__ == str(path.resolve())
    helper = module.helper
    assert pickle.loads(pickle.dumps(helper))(1) == 2
    assert "return x + 1" in inspect.getsource(helper)


def test_module_names_differ_for_files_with_the_same_stem(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, two = tmp_path / "a" / "etl.py", tmp_path / "b" / "etl.py"
    assert module_name_for(one) != module_name_for(two)
    assert module_name_for(one) == module_name_for(tmp_path / "a" / ".." / "a" / "etl.py")
    assert module_name_for(tmp_path / "my-dag.v2.py").isidentifier()


def test_import_error_propagates_and_leaves_no_module_behind(tmp_path: Path) -> None:
    path = write(
        tmp_path / "broken.py",
        """
        from slipstream import DAG
        DAG("half")
        raise ValueError("boom")
        """,
    )
    with pytest.raises(ValueError, match="boom"):
        load_dags_from_file(path)
    assert module_name_for(path) not in sys.modules


def test_a_file_without_dags_gives_an_empty_list(tmp_path: Path) -> None:
    assert load_dags_from_file(write(tmp_path / "none.py", "x = 1\n")) == []


def test_loading_twice_builds_fresh_dags(tmp_path: Path) -> None:
    path = write(tmp_path / "again.py", "from slipstream import DAG\nd = DAG('again')\n")
    first, second = load_dags_from_file(path), load_dags_from_file(path)
    assert first[0] is not second[0]
