"""The API server fixtures, shared with tests/api: a real server process per module."""

from __future__ import annotations

from tests.api.conftest import ApiServer, fresh_api, module_home

__all__ = ["ApiServer", "fresh_api", "module_home"]
