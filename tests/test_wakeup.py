"""wakeup: typed hints, their compact datagram form, and a real socket between two ends."""

from __future__ import annotations

import select
import time
from pathlib import Path

import pytest

from slipstream.wakeup import Hint, HintKind, WakeupListener, WakeupSender


@pytest.mark.parametrize(
    ("hint", "datagram"),
    [
        (Hint.queued_run("etl"), b"Qetl"),
        (Hint.dag_changed("etl"), b"Detl"),
        (Hint.dag_changed(), b"D"),
        (Hint.run_changed(42), b"R42"),
        (Hint.anything(), b"*"),
        (Hint.outcomes("etl"), b"Oetl"),
        (Hint.queued_run("d\u00e9j\u00e0:vu"), "Qd\u00e9j\u00e0:vu".encode()),
    ],
)
def test_a_hint_is_one_kind_byte_and_its_key(hint: Hint, datagram: bytes) -> None:
    assert hint.encode() == datagram
    assert Hint.decode(datagram) == hint


def test_a_run_changed_hint_names_its_run() -> None:
    hint = Hint.decode(b"R42")
    assert (hint.kind, hint.run_pk) == (HintKind.RUN_CHANGED, 42)


# b"run:etl" and b"runpk:3" are the older text form, from a process not yet upgraded.
@pytest.mark.parametrize(
    "datagram", [b"", b"run:etl", b"runpk:3", b"x", b"Rabc", b"R", b"R-1", b"\xff\xfe"]
)
def test_a_datagram_that_cannot_be_read_asks_the_scheduler_to_look_everywhere(
    datagram: bytes,
) -> None:
    assert Hint.decode(datagram) == Hint.anything()


def test_hints_cross_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.wake"
    listener = WakeupListener(path)
    sender = WakeupSender(path)
    sent = [Hint.queued_run("a"), Hint.run_changed(7), Hint.dag_changed()]
    try:
        for hint in sent:
            sender.notify(hint)
        received: list[Hint] = []
        deadline = time.monotonic() + 5
        while len(received) < len(sent) and time.monotonic() < deadline:
            select.select([listener], [], [], 0.1)
            received += listener.drain()
        assert received == sent
    finally:
        sender.close()
        listener.close()


def test_nobody_listening_is_not_an_error(tmp_path: Path) -> None:
    sender = WakeupSender(tmp_path / "nobody.wake")
    try:
        sender.notify(Hint.queued_run("a"))
    finally:
        sender.close()
