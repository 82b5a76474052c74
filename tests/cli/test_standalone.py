"""`slipstream standalone` as a user runs it: one command, then a trigger over HTTP works."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.api.conftest import free_port, wait_for


def test_standalone_serves_the_api_with_a_fresh_admin_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SLIPSTREAM_HOME": str(tmp_path / "home"),
        "SLIPSTREAM_WORKERS": "1",
    }
    env.pop("SLIPSTREAM_DATABASE_URL", None)
    out_path = tmp_path / "standalone.out"
    with out_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "slipstream.cli.main", "standalone", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        banner = wait_for(
            lambda: re.search(r"password: (\S+)", out_path.read_text()), 60, "the admin password"
        )
        assert isinstance(banner, re.Match)
        password = banner.group(1)
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return requests.get(f"{base}/api/v1/health", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(healthy, 60, "the API server")
        reply = requests.post(
            f"{base}/api/experimental/dags/my_dag/dag_runs",
            data=json.dumps({"conf": {"key": "value"}}),
            auth=("admin", password),
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["run_id"].startswith("manual__")
        # The printed password signs in to the web UI as well.
        with requests.Session() as browser:
            form = browser.get(f"{base}/sign-in", timeout=30)
            token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form.text)
            assert token is not None, form.text
            signed_in = browser.post(
                f"{base}/sign-in",
                data={"username": "admin", "password": password, "csrf_token": token.group(1)},
                timeout=30,
            )
            assert signed_in.url == f"{base}/dags" and "my_dag" in signed_in.text
        text = out_path.read_text()
        assert f"UI and API at http://localhost:{port}" in text
        assert text.count(password) == 1  # shown once, kept nowhere in plain text
        db_file = tmp_path / "home" / "slipstream.db"
        assert password.encode() not in db_file.read_bytes()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    assert process.returncode == 0, out_path.read_text()
    assert "standalone | Complete" in out_path.read_text()
    # The API server went with it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
        except requests.ConnectionError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the API server outlived standalone")
