"""/api/v1 Roles and permissions: list, get, create, update and delete roles; list permissions."""

from __future__ import annotations

from fastapi import APIRouter

from slipstream.api.deps import ApiServices
from slipstream.api.security import Security


def router(services: ApiServices, security: Security) -> APIRouter:
    api = APIRouter()
    return api
