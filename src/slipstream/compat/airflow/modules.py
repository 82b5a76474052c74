"""The table behind the `airflow` import path: each Airflow module name Slipstream serves, with
the names it exports and the Slipstream object ("module:attribute") each one is. Targets are
imported only when a DAG file first asks for the name.

Also the advice given for names Slipstream does not serve (providers, SubDAGs...).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_A = "slipstream.authoring"
_S = "slipstream.authoring.sensors"

# -- targets shared by several module names -----------------------------------------------------
SDK_DAG = {"DAG": f"{_A}.dag:DAG", "dag": f"{_A}.dag:dag"}  # Airflow 3: catchup=False
LEGACY_DAG = {"DAG": f"{_A}.legacy:DAG", "dag": f"{_A}.legacy:dag"}  # 1.10/2.x: catchup=True
TASK = {"task": f"{_A}.taskflow:task"}
PARAM = {"Param": f"{_A}.params:Param"}
CHAIN = {
    "chain": f"{_A}.relations:chain",
    "cross_downstream": f"{_A}.relations:cross_downstream",
}
CHAIN_LINEAR = {"chain_linear": f"{_A}.relations:chain_linear"}
BASE_OPERATOR = {"BaseOperator": f"{_A}.task:BaseOperator"}
TASK_GROUP = {
    "TaskGroup": f"{_A}.task_group:TaskGroup",
    "task_group": f"{_A}.task_group_decorator:task_group",
}
LABEL = {"Label": f"{_A}.edges:Label"}
SETUP_TEARDOWN = {
    "setup": f"{_A}.setup_teardown:setup",
    "teardown": f"{_A}.setup_teardown:teardown",
}
CURRENT_CONTEXT = {"get_current_context": f"{_A}.context:get_current_context"}
CONTEXT = {"Context": f"{_A}.context:Context"}
TRIGGER_RULE = {"TriggerRule": f"{_A}.trigger_rules:TriggerRule"}
VARIABLE = {"Variable": f"{_A}.variables:Variable"}
CONNECTION = {"Connection": f"{_A}.variables:Connection"}
BASE_HOOK = {"BaseHook": f"{_A}.variables:BaseHook"}
XCOM_ARG = {"XComArg": f"{_A}.xcom_arg:XComArg"}
# Types for annotations (`def f(ti: TaskInstance)`): the protocols the runner's objects meet.
RUNTIME_TYPES = {
    "DagRun": f"{_A}.context:RuntimeDagRun",
    "TaskInstance": f"{_A}.context:RuntimeTaskInstance",
}
BASH = {"BashOperator": f"{_A}.operators:BashOperator"}
PYTHON = {
    "PythonOperator": f"{_A}.operators:PythonOperator",
    "BranchPythonOperator": f"{_A}.operators:BranchPythonOperator",
    "ShortCircuitOperator": f"{_A}.operators:ShortCircuitOperator",
    **CURRENT_CONTEXT,
}
LEGACY_PYTHON = {  # 1.10's python_operator: provide_context accepted
    "PythonOperator": f"{_A}.legacy:PythonOperator",
    "BranchPythonOperator": f"{_A}.legacy:BranchPythonOperator",
    "ShortCircuitOperator": f"{_A}.legacy:ShortCircuitOperator",
}
EMPTY = {"EmptyOperator": f"{_A}.operators:EmptyOperator"}
DUMMY = {"DummyOperator": f"{_A}.operators:EmptyOperator"}
LATEST_ONLY = {"LatestOnlyOperator": f"{_A}.latest_only:LatestOnlyOperator"}
TRIGGER_DAGRUN = {"TriggerDagRunOperator": f"{_A}.trigger_dagrun:TriggerDagRunOperator"}
ASSETS = {
    name: f"{_A}.assets:{name}" for name in ("Asset", "AssetAlias", "AssetAll", "AssetAny")
} | {"asset": f"{_A}.asset_decorator:asset"}
METADATA = {"Metadata": f"{_A}.asset_events:Metadata"}
DATASETS = {
    name: f"{_A}.assets:{name}" for name in ("Dataset", "DatasetAlias", "DatasetAll", "DatasetAny")
}
BASE_SENSOR = {
    "BaseSensorOperator": f"{_A}.sensors.base:BaseSensorOperator",
    "PokeReturnValue": f"{_A}.sensors.base:PokeReturnValue",
}
TEMPORAL_TRIGGERS = {
    "DateTimeTrigger": f"{_A}.triggers:DateTimeTrigger",
    "TimeDeltaTrigger": f"{_A}.triggers:TimeDeltaTrigger",
}
BASE_TRIGGER = {"BaseTrigger": f"{_A}.triggers:BaseTrigger"}
WEEKDAY = {"WeekDay": f"{_A}.weekday:WeekDay"}
BRANCH_DAY_OF_WEEK = {"BranchDayOfWeekOperator": f"{_A}.weekday:BranchDayOfWeekOperator"}
EXTERNAL_TASK = {
    "ExternalTaskSensor": f"{_S}.external_task:ExternalTaskSensor",
    "ExternalTaskMarker": f"{_A}.external_task:ExternalTaskMarker",
}


def _sensors(module: str, *names: str) -> dict[str, str]:
    return {name: f"{_S}.{module}:{name}" for name in names}


BASH_SENSOR = _sensors("bash", "BashSensor")
PYTHON_SENSOR = _sensors("python", "PythonSensor")
FILE_SENSOR = _sensors("filesystem", "FileSensor")
TIME_SENSOR = _sensors("temporal", "TimeSensor", "TimeSensorAsync")
TIME_DELTA_SENSOR = _sensors("temporal", "TimeDeltaSensor", "TimeDeltaSensorAsync")
DATE_TIME_SENSOR = _sensors("temporal", "DateTimeSensor", "DateTimeSensorAsync")
WEEKDAY_SENSOR = _sensors("weekday", "DayOfWeekSensor")


_EXCEPTION_NAMES = (
    "AirflowException",
    "AirflowBadRequest",
    "AirflowNotFoundException",
    "AirflowConfigException",
    "AirflowSkipException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowRescheduleException",
    "AirflowTaskTimeout",
    "AirflowTaskTerminated",
    "AirflowWebServerTimeout",
    "AirflowOptionalProviderFeatureException",
    "AirflowDagCycleException",
    "AirflowDagDuplicatedIdException",
    "AirflowDagInconsistent",
    "AirflowClusterPolicyViolation",
    "AirflowTimetableInvalid",
    "DagNotFound",
    "DagRunNotFound",
    "TaskNotFound",
    "DagRunAlreadyExists",
    "DuplicateTaskIdFound",
    "ParamValidationError",
    "TaskDeferred",
    "RemovedInAirflow3Warning",
    "AirflowProviderDeprecationWarning",
)
EXCEPTIONS = {name: f"{_A}.exceptions:{name}" for name in _EXCEPTION_NAMES}

_TIMETABLES = f"{_A}.timetables"
_TIMEZONE_NAMES = (
    "utc",
    "utcnow",
    "datetime",
    "make_aware",
    "make_naive",
    "convert_to_utc",
    "coerce_datetime",
    "parse",
    "is_localized",
    "is_naive",
)

_STANDARD = "airflow.providers.standard"

# The common.compat provider's sdk module re-exports the Airflow 3 SDK (falling back to 2.x
# paths) for files that run on both: the names of it that Slipstream has.
_COMPAT_SDK_EXCEPTIONS = (
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "AirflowSensorTimeout",
    "ParamValidationError",
    "TaskDeferred",
    "AirflowConfigException",
)
COMMON_COMPAT_SDK = {
    **SDK_DAG,
    **TASK,
    **TASK_GROUP,
    **SETUP_TEARDOWN,
    **PARAM,
    **CHAIN,
    **CHAIN_LINEAR,
    **LABEL,
    **BASE_OPERATOR,
    **BASE_SENSOR,
    **BASE_HOOK,
    **CURRENT_CONTEXT,
    **CONTEXT,
    **VARIABLE,
    **CONNECTION,
    **XCOM_ARG,
    **ASSETS,
    **METADATA,
    **TRIGGER_RULE,
    **{name: EXCEPTIONS[name] for name in _COMPAT_SDK_EXCEPTIONS},
}

_TABLE: dict[str, dict[str, str]] = {
    # -- Airflow 3: the task SDK and the standard provider --------------------------------------
    "airflow.sdk": {
        **SDK_DAG,
        **TASK,
        **TASK_GROUP,
        **PARAM,
        **CHAIN,
        **CHAIN_LINEAR,
        **LABEL,
        **BASE_OPERATOR,
        **CURRENT_CONTEXT,
        **VARIABLE,
        **CONNECTION,
        **BASE_HOOK,
        **ASSETS,
        **METADATA,
        **CONTEXT,
        **TRIGGER_RULE,
        **SETUP_TEARDOWN,
        **XCOM_ARG,
        **BASE_SENSOR,
    },
    "airflow.sdk.bases.operator": {**BASE_OPERATOR, **CHAIN, **CHAIN_LINEAR},
    "airflow.sdk.bases.sensor": BASE_SENSOR,
    "airflow.sdk.bases.hook": BASE_HOOK,
    # The task SDK's generated API models: DAG files import TriggerRule from there.
    "airflow.sdk.api.datamodels._generated": TRIGGER_RULE,
    "airflow.providers.common.compat.sdk": COMMON_COMPAT_SDK,
    "airflow.sdk.exceptions": {name: EXCEPTIONS[name] for name in _COMPAT_SDK_EXCEPTIONS},
    f"{_STANDARD}.operators.bash": BASH,
    f"{_STANDARD}.operators.python": PYTHON,
    f"{_STANDARD}.operators.empty": EMPTY,
    f"{_STANDARD}.operators.latest_only": LATEST_ONLY,
    f"{_STANDARD}.operators.trigger_dagrun": TRIGGER_DAGRUN,
    f"{_STANDARD}.operators.weekday": BRANCH_DAY_OF_WEEK,
    f"{_STANDARD}.utils.weekday": WEEKDAY,
    f"{_STANDARD}.triggers.temporal": TEMPORAL_TRIGGERS,
    "airflow.triggers.temporal": TEMPORAL_TRIGGERS,
    "airflow.triggers.base": BASE_TRIGGER,
    f"{_STANDARD}.sensors.bash": BASH_SENSOR,
    f"{_STANDARD}.sensors.python": PYTHON_SENSOR,
    f"{_STANDARD}.sensors.filesystem": FILE_SENSOR,
    f"{_STANDARD}.sensors.external_task": EXTERNAL_TASK,
    f"{_STANDARD}.sensors.time": TIME_SENSOR,
    f"{_STANDARD}.sensors.time_delta": TIME_DELTA_SENSOR,
    f"{_STANDARD}.sensors.date_time": DATE_TIME_SENSOR,
    f"{_STANDARD}.sensors.weekday": WEEKDAY_SENSOR,
    # -- Airflow 2 ------------------------------------------------------------------------------
    "airflow": {"DAG": LEGACY_DAG["DAG"], **XCOM_ARG, **DATASETS},
    "airflow.models": {
        "DAG": LEGACY_DAG["DAG"],
        **BASE_OPERATOR,
        **VARIABLE,
        **CONNECTION,
        **PARAM,
        **RUNTIME_TYPES,
        **XCOM_ARG,
    },
    "airflow.models.dag": LEGACY_DAG,
    "airflow.models.baseoperator": {**BASE_OPERATOR, **CHAIN, **CHAIN_LINEAR},
    "airflow.models.param": PARAM,
    "airflow.models.variable": VARIABLE,
    "airflow.models.connection": CONNECTION,
    "airflow.models.dagrun": {"DagRun": RUNTIME_TYPES["DagRun"]},
    "airflow.models.taskinstance": {"TaskInstance": RUNTIME_TYPES["TaskInstance"]},
    "airflow.models.xcom_arg": XCOM_ARG,
    "airflow.decorators": {
        "dag": LEGACY_DAG["dag"],
        **TASK,
        "task_group": TASK_GROUP["task_group"],
        **SETUP_TEARDOWN,
    },
    "airflow.operators.bash": BASH,
    "airflow.operators.python": PYTHON,
    "airflow.operators.empty": EMPTY,
    "airflow.operators.dummy": {**DUMMY, **EMPTY},
    "airflow.operators.latest_only": LATEST_ONLY,
    "airflow.operators.trigger_dagrun": TRIGGER_DAGRUN,
    "airflow.operators.weekday": BRANCH_DAY_OF_WEEK,
    "airflow.sensors.base": BASE_SENSOR,
    "airflow.sensors.bash": BASH_SENSOR,
    "airflow.sensors.python": PYTHON_SENSOR,
    "airflow.sensors.filesystem": FILE_SENSOR,
    "airflow.sensors.external_task": EXTERNAL_TASK,
    "airflow.sensors.time_sensor": TIME_SENSOR,
    "airflow.sensors.time_delta": TIME_DELTA_SENSOR,
    "airflow.sensors.date_time": DATE_TIME_SENSOR,
    "airflow.sensors.weekday": WEEKDAY_SENSOR,
    "airflow.datasets": DATASETS,
    "airflow.datasets.metadata": METADATA,
    "airflow.timetables.datasets": {
        "DatasetOrTimeSchedule": f"{_A}.asset_timetables:DatasetOrTimeSchedule"
    },
    "airflow.timetables.assets": {
        "AssetOrTimeSchedule": f"{_A}.asset_timetables:AssetOrTimeSchedule"
    },
    "airflow.sdk.definitions.asset": ASSETS,
    "airflow.sdk.definitions.asset.metadata": METADATA,
    "airflow.hooks.base": BASE_HOOK,
    "airflow.utils.task_group": {
        "TaskGroup": TASK_GROUP["TaskGroup"],
        "MappedTaskGroup": f"{_A}.mapped_task_group:MappedTaskGroup",
    },
    "airflow.utils.trigger_rule": TRIGGER_RULE,
    "airflow.utils.edgemodifier": LABEL,
    "airflow.utils.weekday": WEEKDAY,
    "airflow.utils.dates": {"days_ago": f"{_A}.dates:days_ago"},
    "airflow.utils.helpers": {**CHAIN, **CHAIN_LINEAR},
    "airflow.utils.timezone": {name: f"{_A}.dates:{name}" for name in _TIMEZONE_NAMES},
    "airflow.utils.context": {**CONTEXT, **CURRENT_CONTEXT},
    "airflow.macros": {
        "ds_add": f"{_A}.macros:ds_add",
        "ds_format": f"{_A}.macros:ds_format",
    },
    "airflow.exceptions": EXCEPTIONS,
    "airflow.timetables.trigger": {
        name: f"{_TIMETABLES}:{name}"
        for name in (
            "CronTriggerTimetable",
            "DeltaTriggerTimetable",
            "MultipleCronTriggerTimetable",
        )
    },
    "airflow.timetables.interval": {
        name: f"{_TIMETABLES}:{name}"
        for name in ("CronDataIntervalTimetable", "DeltaDataIntervalTimetable")
    },
    "airflow.timetables.events": {"EventsTimetable": f"{_TIMETABLES}:EventsTimetable"},
    "airflow.timetables.simple": {
        name: f"{_TIMETABLES}:{name}"
        for name in ("NullTimetable", "OnceTimetable", "ContinuousTimetable")
    },
    # -- Airflow 1.10 ---------------------------------------------------------------------------
    "airflow.operators.bash_operator": BASH,
    "airflow.operators.python_operator": LEGACY_PYTHON,
    "airflow.operators.dummy_operator": DUMMY,
    "airflow.operators.latest_only_operator": LATEST_ONLY,
    "airflow.operators.dagrun_operator": TRIGGER_DAGRUN,
    "airflow.sensors.base_sensor_operator": {
        "BaseSensorOperator": BASE_SENSOR["BaseSensorOperator"]
    },
    "airflow.sensors.external_task_sensor": EXTERNAL_TASK,
    "airflow.sensors.time_delta_sensor": {"TimeDeltaSensor": TIME_DELTA_SENSOR["TimeDeltaSensor"]},
    "airflow.sensors.bash_sensor": BASH_SENSOR,
    "airflow.sensors.python_sensor": PYTHON_SENSOR,
    "airflow.sensors.weekday_sensor": WEEKDAY_SENSOR,
    "airflow.hooks.base_hook": BASE_HOOK,
}

MODULES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {module: MappingProxyType(dict(names)) for module, names in _TABLE.items()}
)

# -- what to say about names Slipstream does not serve -----------------------------------------

_PYTHON_ELSEWHERE = (
    "it runs the callable in another Python environment, which Slipstream does not do; install "
    "the packages the callable needs beside Slipstream and use PythonOperator or @task"
)
NAME_ADVICE: Mapping[str, str] = MappingProxyType(
    {
        "SubDagOperator": "SubDAGs were removed in Airflow 3 and Slipstream never had them; "
        "put the sub-DAG's tasks in a TaskGroup (airflow.utils.task_group) instead",
        "PythonVirtualenvOperator": _PYTHON_ELSEWHERE,
        "ExternalPythonOperator": _PYTHON_ELSEWHERE,
        "BranchPythonVirtualenvOperator": _PYTHON_ELSEWHERE,
        "BranchExternalPythonOperator": _PYTHON_ELSEWHERE,
        "EmailOperator": "sending e-mail from a task is not available; send it from a "
        "PythonOperator (smtplib) instead",
        "AssetWatcher": "event-driven scheduling runs the watcher's trigger (a message queue, "
        "...) in a triggerer process, which Slipstream does not have; schedule the DAG on the "
        "asset and record its events from outside with POST /api/v1/datasets/events",
        "DagBag": "Slipstream parses the DAG folders itself; check a file with "
        "`slipstream dags list-import-errors` or run it with `slipstream dags test`",
    }
)

# Words that end a provider's name inside its module path (providers.<name...>.<kind>.<module>).
_PROVIDER_KINDS = frozenset(
    {
        "operators",
        "sensors",
        "hooks",
        "transfers",
        "triggers",
        "decorators",
        "utils",
        "secrets",
        "notifications",
        "links",
        "example_dags",
        "log",
        "executors",
        "assets",
        "datasets",
    }
)


def advice_for(module: str, name: str) -> str:
    """What to tell a user whose DAG file asks for `name` from `module`, which Slipstream lacks."""
    if name in NAME_ADVICE:
        return NAME_ADVICE[name]
    parts = module.split(".")
    served = MODULES.get(module)
    if len(parts) > 2 and parts[1] == "providers" and parts[2] != "standard" and not served:
        provider: list[str] = []
        for part in parts[2:]:
            if part in _PROVIDER_KINDS:
                break
            provider.append(part)
        package = "apache-airflow-providers-" + "-".join(provider).replace("_", "-")
        return (
            f"Slipstream does not run Airflow provider packages ({package}); call the service "
            "from a PythonOperator/@task or a BashOperator, or keep this DAG on Airflow"
        )
    if len(parts) > 1 and parts[1] == "contrib":
        return (
            "airflow.contrib (Airflow 1.10's community operators, later provider packages) is "
            "not part of Slipstream; call the service from a PythonOperator/@task or a "
            "BashOperator instead"
        )
    if served:
        return f"{module} offers only {', '.join(sorted(served))} in Slipstream"
    return (
        "Slipstream serves the Airflow modules listed in docs/airflow-compatibility.md; "
        "import the construct from one of those or use Slipstream's own API"
    )
