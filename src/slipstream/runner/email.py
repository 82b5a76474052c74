"""E-mail about a failed or retried try (a task's `email` with email_on_failure/email_on_retry),
sent through the SMTP server in Settings from the process that runs the try's callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from slipstream.config import SmtpSettings

if TYPE_CHECKING:
    import smtplib

_log = logging.getLogger("slipstream.task")


def recipients(email: str | Sequence[str] | None) -> list[str]:
    """Airflow takes one address, a comma/semicolon-separated string, or a list."""
    if not email:
        return []
    items = [email] if isinstance(email, str) else list(email)
    found: list[str] = []
    for item in items:
        found += [a.strip() for a in item.replace(";", ",").split(",") if a.strip()]
    return found


def wants_email(task: Any, *, retried: bool) -> bool:
    """Whether this failure (a retry or the final one) is worth an e-mail to the task's owners."""
    if not recipients(getattr(task, "email", None)):
        return False
    return bool(task.email_on_retry if retried else task.email_on_failure)


def failure_message(
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    try_number: int,
    max_tries: int,
    retried: bool,
    exception: object,
    hostname: str,
    log_path: str,
) -> tuple[str, str]:
    """Subject and HTML body, shaped like Airflow's alert (`Airflow alert: <TaskInstance...>`)."""
    import html  # here, as smtplib below: only a try that sends mail needs it

    state = "up_for_retry" if retried else "failed"
    subject = f"Airflow alert: <TaskInstance: {dag_id}.{task_id} {run_id} [{state}]>"
    body = (
        f"Try {try_number} out of {max_tries + 1}<br>"
        f"Exception:<br>{html.escape(str(exception)).replace(chr(10), '<br>')}<br>"
        f"Log: {html.escape(log_path)}<br>"
        f"Host: {html.escape(hostname)}<br>"
    )
    return subject, body


def send_email(smtp: SmtpSettings, to: Sequence[str], subject: str, html_body: str) -> None:
    """Send one message; raises what smtplib raises (the caller logs it)."""
    # Imported here, not at the top: every worker and try process imports this module, few
    # send mail, and smtplib + ssl + email add megabytes that each forked try would copy.
    import smtplib
    import ssl
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = smtp.mail_from
    message["To"] = ", ".join(to)
    message.set_content("This message is HTML; view it in an HTML-capable reader.")
    message.add_alternative(html_body, subtype="html")
    client: smtplib.SMTP
    if smtp.ssl:
        client = smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=smtp.timeout, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    with client:
        if smtp.starttls:
            client.starttls(context=ssl.create_default_context())
        if smtp.user:
            client.login(smtp.user, smtp.password or "")
        client.send_message(message)


def send_failure_email(
    smtp: SmtpSettings | None, to: Sequence[str], subject: str, html_body: str
) -> None:
    """Send, or log once that e-mail is not configured; a failure to send is logged with its
    traceback and changes nothing else."""
    if smtp is None:
        _log.info(
            "Not sending e-mail to %s: e-mail is not configured (set SLIPSTREAM_SMTP_HOST)",
            ", ".join(to),
        )
        return
    try:
        send_email(smtp, to, subject, html_body)
    except Exception:
        _log.exception("Failed to send e-mail to %s", ", ".join(to))
    else:
        _log.info("Sent e-mail alert to %s", ", ".join(to))
