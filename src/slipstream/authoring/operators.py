"""The built-in operators: Python, Bash, Empty, Branch and ShortCircuit, mirroring Airflow's.

Python callables receive context values by parameter name (and the whole context with
**kwargs), as Airflow's operators and TaskFlow functions do.
"""

from __future__ import annotations

import inspect
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Container, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from slipstream.authoring.asset_events import drain_yielded
from slipstream.authoring.task import BaseOperator
from slipstream.authoring.templating import resolve_values
from slipstream.errors import SkipTask, TaskNotFound

if TYPE_CHECKING:
    from slipstream.authoring.context import Context

logger = logging.getLogger(__name__)


def signature_of(function: Callable[..., Any]) -> inspect.Signature | None:
    """The callable's signature, computed once when the task is defined: a worker imports the
    DAG once and forks every try from it, so no try pays for this again."""
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):  # some builtins have none; call_with_context will say so
        return None


def call_with_context(
    function: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    context: Mapping[str, Any],
    signature: inspect.Signature | None = None,
) -> Any:
    """Call `function(*args, **kwargs)`, adding context values for parameters named like context
    keys, or the whole context when it takes **kwargs. Explicit kwargs win over the context.
    `signature`, when the caller knows it already, saves computing it again."""
    if signature is None:
        signature = inspect.signature(function)
    parameters = signature.parameters
    available = {**context, **kwargs}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        chosen = available
    else:
        chosen = {
            name: available[name]
            for name, p in parameters.items()
            if name in available and p.kind is not inspect.Parameter.VAR_POSITIONAL
        }
    # Parameters filled positionally must not also come from the context.
    positional = [
        name
        for name, p in parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ][: len(args)]
    for name in positional:
        if name not in kwargs:
            chosen.pop(name, None)
    for name, p in parameters.items():
        if p.kind is inspect.Parameter.POSITIONAL_ONLY and name not in positional:
            chosen.pop(name, None)
    return function(*args, **chosen)


class EmptyOperator(BaseOperator):
    """Does nothing; useful to group dependencies."""

    def execute(self, context: Context) -> None:
        return None


class PythonOperator(BaseOperator):
    """Calls a Python function with op_args/op_kwargs and the context values it asks for."""

    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "templates_dict": "json",
        "op_args": "py",
        "op_kwargs": "py",
    }

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        show_return_value_in_logs: bool = True,
        templates_exts: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if not callable(python_callable):
            raise TypeError("python_callable must be callable")
        super().__init__(**kwargs)
        if templates_exts:
            # Airflow's per-task template_ext: a templated value ending in one names a file.
            self.template_ext = tuple(templates_exts)  # type: ignore[misc]
        self.python_callable = python_callable
        self.callable_signature = signature_of(python_callable)
        self.op_args: list[Any] = list(op_args or [])
        self.op_kwargs: dict[str, Any] = dict(op_kwargs or {})
        self.templates_dict: dict[str, Any] | None = (
            dict(templates_dict) if templates_dict is not None else None
        )
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context: Context) -> Any:
        # Airflow hands the rendered templates_dict to the callable through the context.
        context["templates_dict"] = self.templates_dict
        result = self.execute_callable(context)
        if self.show_return_value_in_logs:
            logger.info("Done. Returned value was: %r", result)
        return result

    def execute_callable(self, context: Context) -> Any:
        # Normally render_template_fields has already resolved XComArgs; resolving again here
        # keeps a bare execute() (tests, `tasks test` without rendering) correct.
        args = resolve_values(self.op_args, context)
        kwargs = resolve_values(self.op_kwargs, context)
        result = call_with_context(
            self.python_callable, args, kwargs, context, self.callable_signature
        )
        if inspect.isgeneratorfunction(self.python_callable):
            # Airflow 2.10+: a generator yields Metadata for its outlets' events.
            return drain_yielded(result, context.get("outlet_events"), logger)
        return result


class BranchPythonOperator(PythonOperator):
    """Its callable returns the task id(s) to follow; other direct downstream tasks are skipped."""

    def execute(self, context: Context) -> Any:
        chosen = super().execute(context)
        unknown = sorted(_branch_ids(chosen) - set(self.dag.task_ids if self.dag else ()))
        if unknown and self.dag is not None:
            raise TaskNotFound(self.dag.dag_id, unknown[0])
        return chosen

    def skip_after(self, result: Any) -> set[str]:
        return self.downstream_task_ids - _branch_ids(result)


def _branch_ids(result: Any) -> set[str]:
    if result is None:
        return set()
    if isinstance(result, str):
        return {result}
    if isinstance(result, (list, tuple, set, frozenset)) and all(
        isinstance(item, str) for item in result
    ):
        return set(result)
    raise TypeError(f"a branch must return a task id, a list of task ids or None, not {result!r}")


class ShortCircuitOperator(PythonOperator):
    """A falsy result from its callable skips what follows: every downstream task when
    ignore_downstream_trigger_rules, else only the direct ones (trigger rules decide the rest)."""

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def skip_after(self, result: Any) -> set[str]:
        if result:
            return set()
        if self.ignore_downstream_trigger_rules:
            return self.get_flat_relative_ids(upstream=False)
        return self.downstream_task_ids


class BashOperator(BaseOperator):
    """Runs `bash -c bash_command`, streaming its output; returns the last line of output.

    Exit code `skip_on_exit_code` (99 by default) skips the task; any other non-zero exit code
    raises subprocess.CalledProcessError, whose `returncode` carries it.
    """

    template_fields: ClassVar[Sequence[str]] = ("bash_command", "env", "cwd")
    template_ext: ClassVar[Sequence[str]] = (".sh", ".bash")
    template_fields_renderers: ClassVar[dict[str, str]] = {"bash_command": "bash", "env": "json"}

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        cwd: str | None = None,
        output_encoding: str = "utf-8",
        skip_on_exit_code: int | Container[int] | None = 99,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env: dict[str, str] | None = dict(env) if env is not None else None
        self.append_env = append_env
        self.cwd = cwd
        self.output_encoding = output_encoding
        self.skip_on_exit_code = skip_on_exit_code
        self._process: subprocess.Popen[bytes] | None = None

    def _environment(self, context: Mapping[str, Any]) -> dict[str, str]:
        if self.env is None:
            environment = dict(os.environ)
        elif self.append_env:
            environment = {**os.environ, **self.env}
        else:
            environment = dict(self.env)
        environment.update(_airflow_context_variables(context))
        return environment

    def _skips(self, code: int) -> bool:
        if self.skip_on_exit_code is None:
            return False
        if isinstance(self.skip_on_exit_code, int):
            return code == self.skip_on_exit_code
        return code in self.skip_on_exit_code

    def execute(self, context: Context) -> str | None:
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise NotADirectoryError(
                f"cwd {self.cwd!r} of task {self.task_id!r} is not a directory"
            )
        last_line: str | None = None
        # The child stays in our process group, so a runner that kills the try's group kills
        # bash with it; on_kill() covers runners that only signal the try itself.
        with subprocess.Popen(
            ["bash", "-c", self.bash_command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.cwd,
            env=self._environment(context),
        ) as process:
            self._process = process
            try:
                assert process.stdout is not None
                for raw in iter(process.stdout.readline, b""):
                    decoded = raw.decode(self.output_encoding, errors="backslashreplace")
                    last_line = decoded.rstrip("\n")
                    sys.stdout.write(last_line + "\n")
                    sys.stdout.flush()
                code = process.wait()
            finally:
                self._process = None
        if code != 0 and self._skips(code):
            raise SkipTask(f"bash command exited with code {code}")
        if code != 0:
            raise subprocess.CalledProcessError(code, ["bash", "-c", self.bash_command])
        return last_line

    def on_kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()


def _airflow_context_variables(context: Mapping[str, Any]) -> dict[str, str]:
    """The AIRFLOW_CTX_* variables Airflow exports to bash tasks, under Airflow's names."""
    values: dict[str, str] = {}
    ti = context.get("ti")
    dag = context.get("dag")
    if dag is not None:
        values["AIRFLOW_CTX_DAG_ID"] = dag.dag_id
        values["AIRFLOW_CTX_DAG_OWNER"] = dag.owner
    if ti is not None:
        values["AIRFLOW_CTX_TASK_ID"] = ti.task_id
        values["AIRFLOW_CTX_TRY_NUMBER"] = str(ti.try_number)
    if context.get("logical_date") is not None:
        values["AIRFLOW_CTX_EXECUTION_DATE"] = context["logical_date"].isoformat()
        values["AIRFLOW_CTX_LOGICAL_DATE"] = context["logical_date"].isoformat()
    if context.get("run_id") is not None:
        values["AIRFLOW_CTX_DAG_RUN_ID"] = str(context["run_id"])
    return values
