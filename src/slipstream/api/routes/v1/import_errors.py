"""/api/v1 Import errors: the DAG files that failed to import, with their tracebacks."""

from __future__ import annotations

from fastapi import APIRouter

from slipstream.api.deps import ApiServices
from slipstream.api.security import Security


def router(services: ApiServices, security: Security) -> APIRouter:
    api = APIRouter()
    return api
