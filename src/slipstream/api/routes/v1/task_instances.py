"""/api/v1 Task instances: list, get, mark and clear; and their logs by try."""

from __future__ import annotations

from fastapi import APIRouter

from slipstream.api.deps import ApiServices
from slipstream.api.security import Security


def router(services: ApiServices, security: Security) -> APIRouter:
    api = APIRouter()
    return api
