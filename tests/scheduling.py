"""How `pytest -n N` deals the tests to pytest-xdist's workers: in units (a test, or one test
module's tests on one backend where they share a server), longest units first.

A pytest plugin, loaded by tests/conftest.py. Test durations of the last run are kept in
pytest's cache (`.pytest_cache`); a test without one is estimated from its markers.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from xdist.scheduler import LoadScopeScheduling

# Test modules whose tests share a running server per module and backend (module-scoped).
SHARED_SERVER_MODULES = ("tests/api/", "tests/web/")
BACKENDS = ("sqlite", "postgresql")
DURATIONS_KEY = "slipstream/durations"


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: itself, or its module and backend under
    SHARED_SERVER_MODULES, so that the module's server for that backend starts once."""
    module, _, rest = nodeid.partition("::")
    if not module.startswith(SHARED_SERVER_MODULES) or not rest.endswith("]"):
        return nodeid
    params = rest[rest.index("[") + 1 : -1].split("-")
    backend = next((p for p in params if p in BACKENDS), "")
    return f"{module}[{backend}]"


def _estimate(item: pytest.Item) -> float:
    """Seconds a test without a recorded duration may take: a server of its own is the most."""
    if "fresh_api" in getattr(item, "fixturenames", ()):
        return 60.0
    if item.nodeid.startswith(SHARED_SERVER_MODULES):
        return 1.0
    return 10.0 if item.get_closest_marker("slow") else 0.1


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest units first (each unit's tests kept together and in order): a long test dealt
    last would otherwise run alone at the end while the other workers idle."""
    cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
    last: dict[str, float] = cache.get(DURATIONS_KEY, {}) if cache is not None else {}
    units: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        units[unit_of(item.nodeid)].append(item)
    cost = {
        unit: sum(last.get(item.nodeid, _estimate(item)) for item in members)
        for unit, members in units.items()
    }
    order = sorted(units, key=lambda unit: -cost[unit])
    items[:] = [item for unit in order for item in units[unit]]


class _Durations:
    """Collects each test's setup + call + teardown time where the reports arrive (the
    controller under xdist) and merges them into the cache at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        cache = getattr(session.config, "cache", None)
        if cache is not None and self.seconds:
            cache.set(DURATIONS_KEY, {**cache.get(DURATIONS_KEY, {}), **self.seconds})


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # not inside an xdist worker
        config.pluginmanager.register(_Durations(), "slipstream-durations")


class ServerModuleScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with our units, dealt in collection order (longest first)
    rather than by how many tests a unit holds. (xdist_group marks could name the units, but
    `--dist loadgroup` ignores them on pytest 9.2: pytest-xdist issue 1386.)"""

    def __init__(self, config: pytest.Config, log: object) -> None:
        config.option.loadscopereorder = False
        super().__init__(config, log)  # type: ignore[arg-type]

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadScopeScheduling | None:
    if config.getvalue("dist") != "load":  # another distribution was asked for by name
        return None
    return ServerModuleScheduling(config, log)
