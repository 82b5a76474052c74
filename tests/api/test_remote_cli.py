"""The CLI against a real API server (`--server`): the same output as the local commands,
credentials only from the environment or a prompt, server refusals as exit codes."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from slipstream.cli.main import cli
from tests.api.conftest import ApiServer, free_port

pytestmark = pytest.mark.slow

ADMIN = ("remote_admin", "remote-admin-pw")
VIEWER = ("remote_viewer", "remote-viewer-pw")


@pytest.fixture(scope="module")
def server(api: ApiServer) -> Iterator[ApiServer]:
    api.create_user(*ADMIN, "Admin")
    api.create_user(*VIEWER, "Viewer")
    # Parse the examples into the server's database, as its scheduler would.
    synced = api.slipstream("dags", "list")
    assert synced.returncode == 0, synced.stderr
    yield api


def remote(
    server: ApiServer,
    tmp_path: Path,
    *args: str,
    auth: tuple[str, str] | None = ADMIN,
    stdin: str | None = None,
    url: str | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run `slipstream ...` (in this process, as ApiServer.slipstream does) from a machine with
    no Slipstream home of its own: credentials in the environment, never in argv."""
    environment: dict[str, str | None] = {
        key: None for key in os.environ if key.startswith("SLIPSTREAM_")
    }
    environment |= {
        "SLIPSTREAM_HOME": str(tmp_path / "laptop"),
        "SLIPSTREAM_SERVER": url or server.base,
    }
    if auth is not None:
        environment |= {"SLIPSTREAM_USER": auth[0], "SLIPSTREAM_PASSWORD": auth[1]}
    environment |= env
    result = CliRunner().invoke(
        cli, list(args), env=environment, input=stdin, catch_exceptions=False
    )
    return subprocess.CompletedProcess(
        ["slipstream", *args], result.exit_code, result.stdout, result.stderr
    )


def test_dags_list_matches_the_local_command(server: ApiServer, tmp_path: Path) -> None:
    local = server.slipstream("dags", "list", "--output", "json")
    assert local.returncode == 0, local.stderr
    result = remote(server, tmp_path, "dags", "list", "--output", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows == json.loads(local.stdout)
    assert {"my_dag", "example_etl"} <= {row["dag_id"] for row in rows}
    table = remote(server, tmp_path, "dags", "list")
    assert table.returncode == 0, table.stderr
    assert table.stdout == server.slipstream("dags", "list").stdout
    # Nothing was created on "the laptop".
    assert not (tmp_path / "laptop").exists()


def test_pause_and_unpause(server: ApiServer, tmp_path: Path) -> None:
    paused = remote(server, tmp_path, "dags", "pause", "example_bash")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout == "Dag: example_bash, paused: True\n"
    rows = json.loads(remote(server, tmp_path, "dags", "list", "-o", "json").stdout)
    assert next(r for r in rows if r["dag_id"] == "example_bash")["is_paused"] is True
    unpaused = remote(server, tmp_path, "dags", "unpause", "example_bash")
    assert unpaused.returncode == 0, unpaused.stderr
    assert unpaused.stdout == "Dag: example_bash, paused: False\n"


def test_a_token_from_the_environment(server: ApiServer, tmp_path: Path) -> None:
    # A bad token is refused like a bad password; a good one is tried in the auth tests.
    result = remote(
        server, tmp_path, "dags", "list", auth=None, SLIPSTREAM_TOKEN="not-a-real-token"
    )
    assert result.returncode == 5
    assert "401" in result.stderr


def test_password_is_prompted_when_only_the_user_is_given(
    server: ApiServer, tmp_path: Path
) -> None:
    result = remote(
        server,
        tmp_path,
        "dags",
        "pause",
        "example_etl",
        auth=None,
        stdin=f"{ADMIN[1]}\n",
        SLIPSTREAM_USER=ADMIN[0],
    )
    assert result.returncode == 0, result.stderr
    assert ADMIN[1] not in result.stdout + result.stderr
    assert remote(server, tmp_path, "dags", "unpause", "example_etl").returncode == 0


def test_server_errors_become_exit_codes(server: ApiServer, tmp_path: Path) -> None:
    missing = remote(server, tmp_path, "dags", "pause", "no_such_dag")
    assert missing.returncode == 3
    assert missing.stderr == "Error: Dag with id: 'no_such_dag' not found\n"

    wrong = remote(server, tmp_path, "dags", "list", auth=(ADMIN[0], "wrong"))
    assert wrong.returncode == 5
    assert wrong.stderr.startswith("Error: server: ") and "401" in wrong.stderr
    assert "wrong" not in wrong.stderr.replace("401", "")

    denied = remote(server, tmp_path, "dags", "pause", "my_dag", auth=VIEWER)
    assert denied.returncode == 5
    assert "403" in denied.stderr and "can_edit on DAGs" in denied.stderr

    no_credentials = remote(server, tmp_path, "dags", "list", auth=None)
    assert no_credentials.returncode == 2
    assert "SLIPSTREAM_TOKEN" in no_credentials.stderr

    bad_conf = remote(server, tmp_path, "dags", "trigger", "my_dag", "--conf", "[1]")
    assert bad_conf.returncode == 2 and "--conf" in bad_conf.stderr


def test_an_unreachable_server_is_one_line(server: ApiServer, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = remote(server, tmp_path, "dags", "list", url=url)
    assert result.returncode == 5
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: server: {url}")
    assert "Traceback" not in result.stderr
    bad_url = remote(server, tmp_path, "dags", "list", url="localhost:8080")
    assert bad_url.returncode == 2 and "--server" in bad_url.stderr
