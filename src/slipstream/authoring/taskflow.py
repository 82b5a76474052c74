"""The @task decorator (TaskFlow): a Python function becomes an operator each time it is called
inside a DAG, and the call returns an XComArg standing for its return value.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, overload

from slipstream.authoring.mapping import (
    ExpandInput,
    MappedArgument,
    attach,
    check_expand,
    check_expand_kwargs_source,
    check_keywords,
)
from slipstream.authoring.operators import (
    BashOperator,
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
    call_with_context,
    signature_of,
)
from slipstream.authoring.sensors.python import PythonSensor
from slipstream.authoring.task import BaseOperator, definition_context
from slipstream.authoring.templating import resolve_values
from slipstream.authoring.xcom_arg import XComArg
from slipstream.errors import DagDefinitionError

if TYPE_CHECKING:
    from slipstream.authoring.context import Context
    from slipstream.authoring.dag import DAG
    from slipstream.authoring.task_group import TaskGroup

# What TaskFunction calls: an operator class taking python_callable, op_args and op_kwargs.
OperatorFactory = Callable[..., BaseOperator]

_SUFFIX = re.compile(r"__(\d+)$")


def unique_task_id(dag: DAG | None, task_id: str, group: TaskGroup | None = None) -> str:
    """`task_id`, or Airflow's `task_id__N` (next N after those used) if the DAG has it (as
    `group.task_id` when `group` prefixes: the suffix goes on the id before the prefix).

    TaskFlow numbers suffixes 1, 2, 3... without gaps, so the first free N is found by galloping
    then bisecting: a loop calling one function thousands of times stays fast. The answer is
    always free; with hand-made gaps it may differ from Airflow's largest-plus-one.
    """
    full_id = group.child_id if group is not None else str
    if dag is None or full_id(task_id) not in dag.task_dict:
        return task_id
    core = _SUFFIX.sub("", task_id)

    def used(number: int) -> bool:
        return full_id(f"{core}__{number}") in dag.task_dict

    if not used(1):
        return f"{core}__1"
    low, high = 1, 2  # invariant: low is used, high is being tested / free
    while used(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if used(middle) else (low, middle)
    return f"{core}__{high}"


def _returns_mapping(function: Callable[..., Any]) -> bool:
    """Airflow infers multiple_outputs from a `-> dict[...]` style return annotation."""
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError, AttributeError, SyntaxError):
        return False  # an annotation we cannot evaluate says nothing either way
    returned = hints.get("return")
    origin = typing.get_origin(returned) or returned
    return isinstance(origin, type) and issubclass(origin, Mapping)


class _PythonDecoratedOperator(PythonOperator):
    """What @task creates. With multiple_outputs, the runner pushes each key of the returned
    dict as its own XCom besides "return_value" (it owns every push of a task's result)."""

    def __init__(self, *, multiple_outputs: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiple_outputs = multiple_outputs


class _BranchPythonDecoratedOperator(BranchPythonOperator):
    """What @task.branch creates."""


class _ShortCircuitDecoratedOperator(ShortCircuitOperator):
    """What @task.short_circuit creates."""


class _SensorDecoratedOperator(PythonSensor):
    """What @task.sensor creates: the function is the poke (a bool or a PokeReturnValue)."""


class _BashDecoratedOperator(BashOperator):
    """What @task.bash creates: the function's return value is the bash command to run."""

    template_fields: ClassVar[Sequence[str]] = (
        *BashOperator.template_fields,
        "op_args",
        "op_kwargs",
    )

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: list[Any] | None = None,
        op_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # Airflow's placeholder: the real command exists only once the function has run.
        super().__init__(bash_command="set during execution", **kwargs)
        self.python_callable = python_callable
        self.callable_signature = signature_of(python_callable)
        self.op_args: list[Any] = list(op_args or [])
        self.op_kwargs: dict[str, Any] = dict(op_kwargs or {})

    def execute(self, context: Context) -> str | None:
        args = resolve_values(self.op_args, context)
        kwargs = resolve_values(self.op_kwargs, context)
        command = call_with_context(
            self.python_callable, args, kwargs, context, self.callable_signature
        )
        if not isinstance(command, str) or not command.strip():
            raise TypeError(f"the @task.bash function of {self.task_id!r} must return a command")
        self.bash_command = self.render_template(command, context)
        return super().execute(context)


class TaskFunction:
    """A function decorated with @task. Calling it creates the operator and returns an XComArg."""

    def __init__(
        self,
        function: Callable[..., Any],
        operator_class: OperatorFactory,
        operator_kwargs: Mapping[str, Any],
    ) -> None:
        self.function = function
        self.operator_class = operator_class
        self.operator_kwargs = dict(operator_kwargs)
        self.__name__ = getattr(function, "__name__", "task")
        self.__doc__ = function.__doc__
        self.__wrapped__ = function

    def override(self, **kwargs: Any) -> TaskFunction:
        """The same function with some operator arguments replaced (task_id, retries...)."""
        return TaskFunction(self.function, self.operator_class, {**self.operator_kwargs, **kwargs})

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        return XComArg(self._operator(list(args), kwargs))

    def _operator(self, args: list[Any], kwargs: dict[str, Any]) -> BaseOperator:
        options = dict(self.operator_kwargs)
        dag, group = definition_context(options.get("dag"), options.get("task_group"))
        options["task_id"] = unique_task_id(dag, options.get("task_id") or self.__name__, group)
        if self.function.__doc__ and options.get("doc_md") is None:
            options["doc_md"] = inspect.cleandoc(self.function.__doc__)
        return self.operator_class(
            python_callable=self.function, op_args=args, op_kwargs=kwargs, **options
        )

    # -- dynamic task mapping -----------------------------------------------------------------

    def partial(self, **kwargs: Any) -> TaskFunctionPartial:
        """Fix some of the function's arguments; map the others with expand()."""
        return TaskFunctionPartial(self, kwargs)

    def expand(self, **mapped: Any) -> XComArg:
        return TaskFunctionPartial(self, {}).expand(**mapped)

    def expand_kwargs(self, kwargs: Any) -> XComArg:
        return TaskFunctionPartial(self, {}).expand_kwargs(kwargs)

    def parameter_names(self) -> tuple[set[str], bool]:
        """(the function's keyword-passable parameters, whether it takes **kwargs)."""
        signature = signature_of(self.function)
        if signature is None:
            return set(), True
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        parameters = signature.parameters.values()
        names = {p.name for p in parameters if p.kind in kinds}
        return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)

    def __repr__(self) -> str:
        kind = getattr(self.operator_class, "__name__", "operator")
        return f"<TaskFunction {self.__name__} -> {kind}>"


class TaskFunctionPartial:
    """`fn.partial(y=1)`: the fixed arguments of a TaskFlow task about to be mapped."""

    def __init__(self, function: TaskFunction, kwargs: dict[str, Any]) -> None:
        self.function = function
        self.kwargs = kwargs
        self._check_names(kwargs, "partial")

    def _check_names(self, names: Mapping[str, Any], verb: str) -> None:
        known, takes_any = self.function.parameter_names()
        check_keywords(self.function.__name__, verb, names, known, takes_any)

    def expand(self, **mapped: Any) -> XComArg:
        self._check_names(mapped, "expand")
        check_expand(mapped, self.kwargs)
        placeholders = {name: MappedArgument(name) for name in mapped}
        operator = self.function._operator([], {**self.kwargs, **placeholders})
        attach(operator, ExpandInput("expand", args=dict(mapped), into_op_kwargs=True))
        return XComArg(operator)

    def expand_kwargs(self, kwargs: Any) -> XComArg:
        check_expand_kwargs_source(kwargs)
        if isinstance(kwargs, (list, tuple)):
            for item in kwargs:
                if isinstance(item, Mapping):
                    self._check_names(item, "expand_kwargs")
            kwargs = list(kwargs)
        operator = self.function._operator([], dict(self.kwargs))
        attach(operator, ExpandInput("expand_kwargs", source=kwargs, into_op_kwargs=True))
        return XComArg(operator)


def _decorator(
    operator_class: OperatorFactory,
    python_callable: Callable[..., Any] | None,
    kwargs: dict[str, Any],
) -> TaskFunction | Callable[[Callable[..., Any]], TaskFunction]:
    def wrap(function: Callable[..., Any]) -> TaskFunction:
        options = dict(kwargs)
        if operator_class is _PythonDecoratedOperator and options.get("multiple_outputs") is None:
            options["multiple_outputs"] = _returns_mapping(function)
        return TaskFunction(function, operator_class, options)

    return wrap(python_callable) if python_callable is not None else wrap


class TaskDecoratorCollection:
    """`task`: use as @task, @task(...), @task.python, @task.branch, @task.short_circuit,
    @task.bash or @task.sensor. Any BaseOperator argument may be given (task_id, retries,
    pool...)."""

    @overload
    def __call__(self, python_callable: Callable[..., Any], /) -> TaskFunction: ...
    @overload
    def __call__(
        self, python_callable: None = None, /, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], TaskFunction]: ...
    def __call__(
        self, python_callable: Callable[..., Any] | None = None, /, **kwargs: Any
    ) -> TaskFunction | Callable[[Callable[..., Any]], TaskFunction]:
        return _decorator(_PythonDecoratedOperator, python_callable, kwargs)

    @overload
    def python(self, python_callable: Callable[..., Any], /) -> TaskFunction: ...
    @overload
    def python(
        self, python_callable: None = None, /, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], TaskFunction]: ...
    def python(
        self, python_callable: Callable[..., Any] | None = None, /, **kwargs: Any
    ) -> TaskFunction | Callable[[Callable[..., Any]], TaskFunction]:
        return _decorator(_PythonDecoratedOperator, python_callable, kwargs)

    @overload
    def branch(self, python_callable: Callable[..., Any], /) -> TaskFunction: ...
    @overload
    def branch(
        self, python_callable: None = None, /, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], TaskFunction]: ...
    def branch(
        self, python_callable: Callable[..., Any] | None = None, /, **kwargs: Any
    ) -> TaskFunction | Callable[[Callable[..., Any]], TaskFunction]:
        return _decorator(_BranchPythonDecoratedOperator, python_callable, kwargs)

    @overload
    def short_circuit(self, python_callable: Callable[..., Any], /) -> TaskFunction: ...
    @overload
    def short_circuit(
        self, python_callable: None = None, /, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], TaskFunction]: ...
    def short_circuit(
        self, python_callable: Callable[..., Any] | None = None, /, **kwargs: Any
    ) -> TaskFunction | Callable[[Callable[..., Any]], TaskFunction]:
        return _decorator(_ShortCircuitDecoratedOperator, python_callable, kwargs)

    @overload
    def bash(self, python_callable: Callable[..., Any], /) -> TaskFunction: ...
    @overload
    def bash(
        self, python_callable: None = None, /, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], TaskFunction]: ...
    def bash(
        self, python_callable: Callable[..., Any] | None = None, /, **kwargs: Any
    ) -> TaskFunction | Callable[[Callable[..., Any]], TaskFunction]:
        return _decorator(_BashDecoratedOperator, python_callable, kwargs)

    @overload
    def sensor(self, python_callable: Callable[..., Any], /) -> TaskFunction: ...
    @overload
    def sensor(
        self, python_callable: None = None, /, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], TaskFunction]: ...
    def sensor(
        self, python_callable: Callable[..., Any] | None = None, /, **kwargs: Any
    ) -> TaskFunction | Callable[[Callable[..., Any]], TaskFunction]:
        """The function pokes (poke_interval, timeout, mode... as BaseSensorOperator)."""
        return _decorator(_SensorDecoratedOperator, python_callable, kwargs)

    def __getattr__(self, name: str) -> Any:
        # Airflow's other @task.<kind> decorators: a clear DAG import error naming them.
        if name in _ELSEWHERE_DECORATORS:
            raise DagDefinitionError(
                f"@task.{name} is not available in Slipstream: it runs the function "
                f"{_ELSEWHERE_DECORATORS[name]}; use @task with what it needs installed "
                "beside Slipstream"
            )
        if name in _OTHER_DECORATORS:
            raise DagDefinitionError(
                f"@task.{name} is not available in Slipstream: {_OTHER_DECORATORS[name]}"
            )
        # Still an AttributeError (hasattr() and introspection keep working), naming the name.
        raise AttributeError(
            f"@task.{name} is not available in Slipstream: it is not one of the TaskFlow "
            "decorators Slipstream knows (@task, @task.python, @task.branch, "
            "@task.short_circuit, @task.bash, @task.sensor)"
        )


# Airflow decorators that run the function somewhere else than the worker's interpreter.
_ELSEWHERE_DECORATORS = {
    "virtualenv": "in a virtualenv built for it",
    "external_python": "in another Python installation",
    "branch_virtualenv": "in a virtualenv built for it",
    "branch_external_python": "in another Python installation",
    "docker": "in a Docker container",
    "kubernetes": "in a Kubernetes pod",
    "pyspark": "on Spark",
    "kubernetes_cmd": "as the command of a Kubernetes pod",
    "snowpark": "in Snowflake's Snowpark",
}

# Airflow's other decorators, each with what to write instead.
_OTHER_DECORATORS = {
    "run_if": "its condition is not evaluated; decide inside the task and raise "
    "AirflowSkipException, or put a @task.short_circuit before it",
    "skip_if": "its condition is not evaluated; decide inside the task and raise "
    "AirflowSkipException, or put a @task.short_circuit before it",
    "sql": "it runs SQL through a database provider (apache-airflow-providers-common-sql); "
    "run the query from a @task with the database's Python client",
    "stub": "it stands for a task written in another language's task SDK, which Slipstream "
    "does not run; write the task in Python or call the program from @task.bash",
}


# A stateless singleton, as Airflow's `task` object: nothing on it ever changes.
task = TaskDecoratorCollection()
