"""email_on_failure / email_on_retry against a real SMTP server (aiosmtpd) on a free port."""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from slipstream.authoring.dag import DAG
from slipstream.authoring.taskflow import task
from slipstream.config import SmtpSettings
from slipstream.core.states import TaskState
from slipstream.runner.email import recipients
from slipstream.runner.task_runner import run_try
from tests.runner.support import make_workload


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        self.arrived.set()
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, SmtpSettings]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, SmtpSettings(host="127.0.0.1", port=port, mail_from="alerts@example.com")
    finally:
        controller.stop()


def _dag(**task_args: Any) -> DAG:
    with DAG("mail", schedule=None, start_date=datetime(2024, 1, 1)) as dag:

        @task(**task_args)
        def boom() -> None:
            raise ValueError("disk full <on /data>")

        boom()
    return dag


def test_a_final_failure_is_mailed_to_every_address(
    smtp_server: tuple[Inbox, SmtpSettings], tmp_path: Path
) -> None:
    inbox, smtp = smtp_server
    dag = _dag(email=["ops@example.com", "oncall@example.com"])
    workload = make_workload(tmp_path / "f.py", "boom", dag_id="mail")
    finished = run_try(workload, dag, smtp=smtp, hostname="worker-1")
    assert finished.state is TaskState.FAILED
    assert inbox.arrived.wait(10)
    [(to, message)] = inbox.messages
    assert to == ["ops@example.com", "oncall@example.com"]
    assert message["From"] == "alerts@example.com"
    assert message["Subject"] == "Airflow alert: <TaskInstance: mail.boom manual__1 [failed]>"
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    body = html.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "Try 1 out of 1" in body and "Host: worker-1" in body
    assert "disk full &lt;on /data&gt;" in body


def test_retries_are_mailed_unless_email_on_retry_is_off(
    smtp_server: tuple[Inbox, SmtpSettings], tmp_path: Path
) -> None:
    inbox, smtp = smtp_server
    workload = make_workload(tmp_path / "f.py", "boom", dag_id="mail", max_tries=2)
    run_try(workload, _dag(email="ops@example.com", email_on_retry=False), smtp=smtp)
    run_try(workload, _dag(email="ops@example.com, b@example.com"), smtp=smtp)
    assert inbox.arrived.wait(10)
    [(to, message)] = inbox.messages
    assert to == ["ops@example.com", "b@example.com"]
    assert "[up_for_retry]" in message["Subject"]


def test_without_smtp_settings_a_try_says_once_that_email_is_not_configured(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    run_try(make_workload(tmp_path / "f.py", "boom", dag_id="mail"), _dag(email="a@example.com"))
    said = [r for r in caplog.records if "e-mail is not configured" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "INFO"


def test_an_unreachable_server_is_logged_and_the_outcome_stands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    smtp = SmtpSettings(host="127.0.0.1", port=_free_port(), timeout=2)
    workload = make_workload(tmp_path / "f.py", "boom", dag_id="mail")
    finished = run_try(workload, _dag(email="a@example.com"), smtp=smtp)
    assert (
        finished.state is TaskState.FAILED and finished.error == "ValueError: disk full <on /data>"
    )
    assert any("Failed to send e-mail" in r.getMessage() and r.exc_info for r in caplog.records)


def test_recipients_accept_airflow_spellings() -> None:
    assert recipients("a@x.org; b@x.org,c@x.org") == ["a@x.org", "b@x.org", "c@x.org"]
    assert recipients(["a@x.org", "b@x.org"]) == ["a@x.org", "b@x.org"]
    assert recipients(None) == [] and recipients("") == []
