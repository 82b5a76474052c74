"""Test hosts in network namespaces: another "machine" on this one, joined by a veth pair.

A process started in a `NetHost` has its own loopback and network stack; the only way out is
the veth link to the host side. PostgreSQL, Redis and RabbitMQ listen on the host's
127.0.0.1 only, so each is reached through a `Relay` on the host end of the link: a TCP
forwarder the test owns, which can also cut the link (a partition) and mend it. So traffic
between a worker in a NetHost and the database or broker really crosses a network, and the
test decides when that network fails.

Needs root and `ip` (iproute2), as CI has; `available()` says whether this machine can.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType


def available() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


class Relay:
    """Forwards TCP from `listen` (the host end of a link) to `target` on the host's loopback,
    one thread pair per connection. `cut()` drops every connection and refuses new ones until
    `mend()`: to the far side, the service just became unreachable."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self._target = target
        self._server = socket.create_server(listen, reuse_port=False)
        self.address: tuple[str, int] = self._server.getsockname()[:2]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True, name="relay")
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            done = threading.Barrier(2)  # the second pump to end closes both sockets
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink, done), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, done: threading.Barrier) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            if done.wait() == 0:
                for end in (source, sink):
                    with self._lock:
                        self._open.discard(end)
                    end.close()

    def cut(self) -> None:
        self._cut = True
        with self._lock:
            ends, self._open = list(self._open), set()
        for end in ends:  # their pumps end, and close them
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def mend(self) -> None:
        self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()
        self._thread.join(5)


class NetHost:
    """A network namespace with a veth link to this machine, and relays to services on the
    host's loopback. Use as a context manager: its processes are killed and the namespace
    (with its end of the link) deleted on the way out."""

    def __init__(self, relay_ports: Sequence[int] = ()) -> None:
        tag = secrets.token_hex(3)
        self.name = f"ss-{tag}"
        # A /30 of its own in 10.231.0.0/16, so that hosts of parallel tests never overlap.
        block = int(tag, 16) % (1 << 14)
        base = f"10.231.{block >> 6}.{(block & 0x3F) << 2}"
        prefix, last = base.rsplit(".", 1)
        self.host_address = f"{prefix}.{int(last) + 1}"
        self.address = f"{prefix}.{int(last) + 2}"
        self._outer, self._inner = f"vh{tag}", f"vn{tag}"
        self._processes: list[subprocess.Popen[bytes]] = []
        self.relays: dict[int, Relay] = {}
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self._outer, "type", "veth", "peer", "name", self._inner)
            _ip("link", "set", self._inner, "netns", self.name)
            _ip("addr", "add", f"{self.host_address}/30", "dev", self._outer)
            _ip("link", "set", self._outer, "up")
            inside = ("netns", "exec", self.name, "ip")
            _ip(*inside, "addr", "add", f"{self.address}/30", "dev", self._inner)
            _ip(*inside, "link", "set", self._inner, "up")
            _ip(*inside, "link", "set", "lo", "up")
            for port in relay_ports:
                self.relays[port] = Relay((self.host_address, 0), ("127.0.0.1", port))
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> NetHost:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def reach(self, port: int) -> tuple[str, int]:
        """Where a process in this host reaches the host's service on `port`."""
        return self.relays[port].address

    def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **kwargs: object
    ) -> subprocess.Popen[bytes]:
        process: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", self.name, *argv], env=env, **kwargs
        )
        self._processes.append(process)
        return process

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def close(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        for relay in self.relays.values():
            relay.close()
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "delete", self.name)  # its end of the veth pair goes with it
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "delete", self._outer)
