"""The chaos suite's other machines: a process in a NetHost reaches PostgreSQL and Redis only
across its veth link, through the test's relays, and loses them when the test cuts the link."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.chaos.netns import NetHost, available

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(not available(), reason="needs root and iproute2 for network namespaces"),
]

PG, REDIS = 5432, 6379

CONNECT = """
import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    with socket.create_connection((host, port), timeout=3) as s:
        if kind == "redis":
            s.sendall(b"PING\\r\\n")
            print(s.recv(64).decode().strip())
        else:
            import psycopg
            with psycopg.connect(f"postgresql://postgres@{host}:{port}/postgres",
                                 connect_timeout=3) as c:
                row = c.execute("SELECT 'pg ' || current_setting('server_version_num')")
                print(row.fetchone()[0])
except OSError as exc:
    print(f"unreachable: {exc}")
    sys.exit(3)
except Exception as exc:
    print(f"failed: {type(exc).__name__}: {exc}")
    sys.exit(4)
"""


def _connect(host: NetHost, kind: str, address: tuple[str, int]) -> tuple[int, str]:
    done = host.run(
        [sys.executable, "-c", CONNECT, kind, address[0], str(address[1])],
        env={**os.environ},
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def test_services_are_reached_only_across_the_link_and_a_cut_partitions_them() -> None:
    with NetHost(relay_ports=(PG, REDIS)) as host:
        # Its own loopback has nothing on it: the host's services are not "local" there.
        code, said = _connect(host, "redis", ("127.0.0.1", REDIS))
        assert code == 3, said
        code, said = _connect(host, "redis", host.reach(REDIS))
        assert (code, said) == (0, "+PONG")
        code, said = _connect(host, "pg", host.reach(PG))
        assert code == 0 and said.startswith("pg "), said

        host.relays[PG].cut()
        code, said = _connect(host, "pg", host.reach(PG))
        assert code != 0, said
        host.relays[PG].mend()
        code, said = _connect(host, "pg", host.reach(PG))
        assert code == 0, said


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_namespaces_are_removed_with_their_host() -> None:
    with NetHost() as host:
        name = host.name
        assert name in _namespaces()
    assert name not in _namespaces()
