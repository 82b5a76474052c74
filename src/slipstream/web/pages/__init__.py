"""The UI's pages, one module per page (or family of URLs). Each module has a `router()`
returning a fresh APIRouter with its routes, and `NAV`: its navigation entry, or None. A new
page is a new module here plus its line in PAGES; pages never import each other."""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter

from slipstream.web.nav import NavItem
from slipstream.web.pages import (
    account,
    admin,
    admin_connections,
    admin_pools,
    admin_variables,
    dag_code,
    dag_details,
    dags,
    graph,
    grid,
    live,
    logs,
    runs,
    security,
    security_roles,
    security_tokens,
    security_users,
    sign_in,
    task_instance,
    trigger,
)


class Page(Protocol):
    @property
    def NAV(self) -> NavItem | None: ...  # noqa: N802 (a module constant)

    def router(self) -> APIRouter: ...


# In navigation order.
PAGES: tuple[Page, ...] = (
    dags,
    graph,
    security,
    security_users,
    security_roles,
    security_tokens,
    admin,
    admin_pools,
    admin_variables,
    admin_connections,
    account,
    sign_in,
    live,
    logs,
    trigger,
    runs,
    grid,
    task_instance,
    dag_code,
    dag_details,
)
