"""/api/v1 DAGs: list, get, details, tasks, pause and unpause (one or by pattern), delete."""

from __future__ import annotations

from fastapi import APIRouter

from slipstream.api.deps import ApiServices
from slipstream.api.security import Security


def router(services: ApiServices, security: Security) -> APIRouter:
    api = APIRouter()
    return api
