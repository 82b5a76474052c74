"""Schemathesis against the served OpenAPI document: generated requests (valid and invalid) to
every operation of a real server must never get a 5xx, and every answer must match the schema.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import ApiServer

pytestmark = pytest.mark.slow

PASSWORD = "schemathesis-pass-1"  # a throwaway server's user


def _schemathesis() -> str:
    found = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(found).exists():
        pytest.fail("schemathesis is not installed; it is in the test extra")
    return found


@pytest.mark.timeout(900)
def test_no_server_errors_and_no_schema_violations(fresh_api: ApiServer, tmp_path: Path) -> None:
    # Generated ?wait= values must end well inside schemathesis's own request timeout.
    fresh_api.env["SLIPSTREAM_API_MAX_WAIT_SECONDS"] = "2"
    fresh_api.sync_dags()
    fresh_api.start_scheduler()
    fresh_api.start()
    fresh_api.create_user("fuzzer", PASSWORD, "Admin")
    credentials = base64.b64encode(f"fuzzer:{PASSWORD}".encode()).decode()
    seed = os.environ.get("SLIPSTREAM_SCHEMATHESIS_SEED", "1")
    command = [_schemathesis(), "run", f"{fresh_api.base}/api/v1/openapi.json"]
    command += ["--header", f"Authorization: Basic {credentials}"]
    command += ["--checks", "not_a_server_error,response_schema_conformance"]
    command += ["--phases", "examples,coverage,fuzzing", "--max-examples", "25"]
    command += ["--seed", seed, "--workers", "1"]
    # Nothing shared between runs or with the other backend's run going on beside this one:
    # no example database in the working tree, and this test's own folder to work in.
    command += ["--generation-database", ":memory:"]
    # Fuzzed sign-ins would lock this client's address out (the failed-login limit) and hide
    # the rest from it; POST /auth/token has tests of its own.
    command += ["--exclude-path-regex", "^/auth/"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=840,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    report = result.stdout[-12000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    assert "Traceback" not in fresh_api.output("api"), fresh_api.output("api")[-5000:]
