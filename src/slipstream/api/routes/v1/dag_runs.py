"""/api/v1 DAG runs: list, batch list, get and trigger (both with ?wait=, trigger with an
Idempotency-Key), mark, clear, note and delete."""

from __future__ import annotations

from fastapi import APIRouter

from slipstream.api.deps import ApiServices
from slipstream.api.security import Security


def router(services: ApiServices, security: Security) -> APIRouter:
    api = APIRouter()
    return api
