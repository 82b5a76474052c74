"""Jinja rendering of templated task fields against a run's context.

jinja2 is imported only when an environment is built, so DAG files that never render (and
`import slipstream`) do not pay for it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2


class Resolvable(ABC):
    """A value known only at run time (an upstream XCom, a run's param): rendering resolves it
    from the context instead of treating it as a template."""

    @abstractmethod
    def resolve(self, context: Mapping[str, Any]) -> Any: ...


def _ds(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d")


def _ds_nodash(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y%m%d")


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _ts_nodash(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y%m%dT%H%M%S")


def _ts_nodash_with_tz(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("-", "").replace(":", "")


# Airflow's built-in filters (`{{ logical_date | ds }}`): the formats of the context's ds/ts keys.
AIRFLOW_FILTERS: Mapping[str, Callable[[datetime | None], str | None]] = MappingProxyType(
    {
        "ds": _ds,
        "ds_nodash": _ds_nodash,
        "ts": _ts,
        "ts_nodash": _ts_nodash,
        "ts_nodash_with_tz": _ts_nodash_with_tz,
    }
)


def make_environment(
    *,
    native: bool = False,
    searchpath: Sequence[str] = (),
    user_defined_macros: Mapping[str, Any] | None = None,
    user_defined_filters: Mapping[str, Callable[..., Any]] | None = None,
    jinja_environment_kwargs: Mapping[str, Any] | None = None,
) -> jinja2.Environment:
    """A Jinja environment like Airflow's: undefined names fail loudly; files load from
    `searchpath`; user macros are globals and user filters are filters (over Airflow's)."""
    import jinja2
    import jinja2.nativetypes

    from slipstream.authoring import macros

    options: dict[str, Any] = {
        "undefined": jinja2.StrictUndefined,
        "loader": jinja2.FileSystemLoader(list(searchpath)),
        # Airflow keeps a template's trailing newline: bash scripts and SQL files expect it.
        "keep_trailing_newline": True,
    }
    options.update(jinja_environment_kwargs or {})
    environment_class = jinja2.nativetypes.NativeEnvironment if native else jinja2.Environment
    environment = environment_class(**options)
    environment.globals["macros"] = macros
    environment.filters.update(AIRFLOW_FILTERS)
    environment.globals.update(user_defined_macros or {})
    environment.filters.update(user_defined_filters or {})
    return environment


def render_template(
    value: Any,
    context: Mapping[str, Any],
    environment: jinja2.Environment,
    *,
    template_ext: Sequence[str] = (),
) -> Any:
    """Render strings (recursively inside lists, tuples, sets and dict values); resolve
    Resolvables; leave anything else as it is. A string ending in one of `template_ext` names a
    template file to load from the environment's search path, as in Airflow."""
    if isinstance(value, Resolvable):
        # A resolved value is data, not a template: it is never rendered again.
        return value.resolve(context)
    if isinstance(value, str):
        if template_ext and value.endswith(tuple(template_ext)):
            template = environment.get_template(value)
        else:
            template = environment.from_string(value)
        return template.render(context)
    # Strings inside collections are templates too, template files included (as in Airflow).
    ext = tuple(template_ext)
    if isinstance(value, list):
        return [render_template(item, context, environment, template_ext=ext) for item in value]
    if isinstance(value, tuple):
        return tuple(
            render_template(item, context, environment, template_ext=ext) for item in value
        )
    if isinstance(value, (set, frozenset)):
        return type(value)(
            render_template(item, context, environment, template_ext=ext) for item in value
        )
    if isinstance(value, dict):
        return {
            key: render_template(item, context, environment, template_ext=ext)
            for key, item in value.items()
        }
    return value


def resolve_values(value: Any, context: Mapping[str, Any]) -> Any:
    """`value` with every Resolvable inside it (lists, tuples, sets, dict values) resolved and
    nothing rendered: for callers that may run before or without render_template_fields."""
    if isinstance(value, Resolvable):
        return value.resolve(context)
    if isinstance(value, list):
        return [resolve_values(item, context) for item in value]
    if isinstance(value, tuple):
        return tuple(resolve_values(item, context) for item in value)
    if isinstance(value, (set, frozenset)):
        return type(value)(resolve_values(item, context) for item in value)
    if isinstance(value, dict):
        return {key: resolve_values(item, context) for key, item in value.items()}
    return value
