"""Slipstream: a workflow orchestrator that speaks Airflow. This is what DAG files import.

Kept light on purpose (no jinja2, SQLAlchemy or click here): DAG files and the CLI import it.
"""

from slipstream.authoring.context import get_current_context
from slipstream.authoring.dag import DAG, dag
from slipstream.authoring.edges import Label
from slipstream.authoring.operators import (
    BashOperator,
    BranchPythonOperator,
    EmptyOperator,
    PythonOperator,
    ShortCircuitOperator,
)
from slipstream.authoring.params import Param
from slipstream.authoring.relations import chain, chain_linear, cross_downstream
from slipstream.authoring.setup_teardown import setup, teardown
from slipstream.authoring.task import BaseOperator
from slipstream.authoring.task_group import TaskGroup
from slipstream.authoring.task_group_decorator import task_group
from slipstream.authoring.taskflow import task
from slipstream.authoring.xcom_arg import XComArg
from slipstream.errors import FailTask, SkipTask

__version__ = "0.1.0"

__all__ = [
    "DAG",
    "BaseOperator",
    "BashOperator",
    "BranchPythonOperator",
    "EmptyOperator",
    "FailTask",
    "Label",
    "Param",
    "PythonOperator",
    "ShortCircuitOperator",
    "SkipTask",
    "TaskGroup",
    "XComArg",
    "__version__",
    "chain",
    "chain_linear",
    "cross_downstream",
    "dag",
    "get_current_context",
    "setup",
    "task",
    "task_group",
    "teardown",
]
