"""A DAG's Code tab: the DAG file's text as parsed, from the stored source of one of its
versions (the API server never imports DAG code), with which version it is, when it was
stored and how many runs ran it; a selector when the DAG has several versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from slipstream.auth.roles import Action
from slipstream.web.dag_pages import check_dag, dag_context
from slipstream.web.deps import PartsDep
from slipstream.web.errors import PageError
from slipstream.web.nav import NavItem
from slipstream.web.sessions import VisitorDep

NAV: NavItem | None = None


def code_page(
    request: Request,
    dag_id: str,
    visitor: VisitorDep,
    parts: PartsDep,
    version: Annotated[str | None, Query()] = None,
) -> Response:
    check_dag(visitor, parts.services.dags.get(dag_id), Action.DAGS_READ)
    version_id = None
    if version:
        try:
            version_id = int(version)
        except ValueError:
            detail = f"version must be a version's id, not {version!r}"
            raise PageError(400, detail=detail) from None
    code = parts.services.dag_view.code(dag_id, version_id)
    lines = (code.source or "").splitlines()
    context = dag_context(code.dag, "code", code=code, lines=lines)
    return parts.templates.render(request, "dag_code.html", context)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route("/dags/{dag_id}/code", code_page, methods=["GET"])
    return pages
