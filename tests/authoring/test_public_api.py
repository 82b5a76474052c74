from __future__ import annotations

import subprocess
import sys

import slipstream

PUBLIC = [
    "DAG",
    "dag",
    "task",
    "Param",
    "chain",
    "cross_downstream",
    "BaseOperator",
    "PythonOperator",
    "BashOperator",
    "EmptyOperator",
    "BranchPythonOperator",
    "ShortCircuitOperator",
    "get_current_context",
    "SkipTask",
    "FailTask",
    "XComArg",
    "__version__",
    "TaskGroup",
    "task_group",
    "Label",
    "chain_linear",
    "setup",
    "teardown",
]


def test_all_is_the_public_surface() -> None:
    assert sorted(slipstream.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(slipstream, name), name
    assert slipstream.__version__ == "0.1.0"


def test_importing_slipstream_loads_nothing_heavy() -> None:
    code = (
        "import slipstream, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'jinja2','sqlalchemy','click','pydantic'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_importing_slipstream_defers_croniter() -> None:
    code = "import slipstream, sys; print('croniter' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
