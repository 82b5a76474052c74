"""The import hook: a meta-path finder, first in sys.meta_path, that serves `airflow` and every
`airflow.*` module from the table in modules.py, resolving each name on first use.

A module the table does not list still imports (as an empty package) so that the error comes
where the DAG file asks for a name: `from airflow.providers.x.operators.y import Op` fails with
an ImportError naming `Op` and saying what to do, raised from the user's own line.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from slipstream.compat.airflow.modules import MODULES, advice_for
from slipstream.errors import NotAvailableInSlipstream

if TYPE_CHECKING:
    import importlib.abc

ROOT = "airflow"


def is_airflow_module(fullname: str) -> bool:
    return fullname == ROOT or fullname.startswith(ROOT + ".")


def is_served_package(fullname: str) -> bool:
    """Whether the table lists `fullname` or a module inside it."""
    return fullname in MODULES or any(module.startswith(fullname + ".") for module in MODULES)


class AirflowLoader:
    """Fills a fresh module with a module-level __getattr__ that resolves table names.

    The import system's protocols, not importlib.abc's base classes: importing importlib.abc
    pulls in importlib.resources, which every warm worker (and each try it forks) would carry."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        name = module.__name__
        served = MODULES.get(name, {})
        module.__path__ = []  # every airflow module can hold submodules, as packages do
        module.__all__ = sorted(served)  # type: ignore[attr-defined]
        module.__getattr__ = _resolver(module, name)  # type: ignore[method-assign]
        module.__dir__ = lambda: sorted({*vars(module), *served})  # type: ignore[method-assign]


def _resolver(module: types.ModuleType, name: str) -> Callable[[str], Any]:
    served = MODULES.get(name, {})

    def resolve(attribute: str) -> Any:
        if attribute.startswith("__"):  # probes by inspect, pickle, typing...
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        target = served.get(attribute)
        if target is None and is_served_package(f"{name}.{attribute}"):
            # 1.10 files write `airflow.utils.dates.days_ago(...)` after `import airflow`: in
            # Airflow the package had already imported that submodule, so attribute access works.
            return importlib.import_module(f"{name}.{attribute}")
        if target is None:
            raise NotAvailableInSlipstream(attribute, name, advice_for(name, attribute))
        value = _load_target(target, attribute, name)
        setattr(module, attribute, value)  # later lookups skip __getattr__
        return value

    return resolve


def _load_target(target: str, attribute: str, module: str) -> Any:
    owner, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(owner), name)
    except (ImportError, AttributeError) as exc:
        # Only if this build lacks a module the table names: say so rather than leak the path.
        raise NotAvailableInSlipstream(
            attribute, module, f"this Slipstream build lacks {target} ({exc})"
        ) from None


class AirflowFinder:
    """Claims every `airflow` module name, so no other finder (a real Airflow) ever serves one."""

    def __init__(self) -> None:
        self.loader = AirflowLoader()

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not is_airflow_module(fullname):
            return None
        return importlib.machinery.ModuleSpec(
            fullname,
            cast("importlib.abc.Loader", self.loader),
            origin="slipstream-airflow-compat",
            is_package=True,
        )


def install_airflow_hook() -> AirflowFinder:
    """Put the finder first in sys.meta_path (once; moved back to the front if something was
    inserted before it) and drop any `airflow` modules another finder had already loaded here,
    so DAG files imported from now on get Slipstream's classes. Returns the finder."""
    current = next((f for f in sys.meta_path if isinstance(f, AirflowFinder)), None)
    if current is None:
        current = AirflowFinder()
    else:
        sys.meta_path.remove(current)
    sys.meta_path.insert(0, current)
    for name in [n for n in sys.modules if is_airflow_module(n)]:
        spec = getattr(sys.modules[name], "__spec__", None)
        if spec is None or not isinstance(spec.loader, AirflowLoader):
            del sys.modules[name]
    return current
