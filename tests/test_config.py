"""Settings read from the environment: the SMTP settings that email_on_failure sends through."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipstream.config import Settings, SmtpSettings
from slipstream.errors import ConfigError


def test_no_smtp_host_means_email_is_not_configured() -> None:
    assert Settings.from_env({"SLIPSTREAM_HOME": "/tmp/x"}).smtp is None


def test_smtp_settings_with_the_password_read_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret\n")
    smtp = SmtpSettings.from_env(
        {
            "SLIPSTREAM_SMTP_HOST": "mail.example.com",
            "SLIPSTREAM_SMTP_PORT": "587",
            "SLIPSTREAM_SMTP_USER": "bot",
            "SLIPSTREAM_SMTP_PASSWORD_FILE": str(secret),
            "SLIPSTREAM_SMTP_STARTTLS": "true",
            "SLIPSTREAM_SMTP_MAIL_FROM": "airflow@example.com",
            "SLIPSTREAM_SMTP_TIMEOUT": "5",
        }
    )
    assert smtp == SmtpSettings(
        host="mail.example.com",
        port=587,
        user="bot",
        password="s3cret",
        starttls=True,
        mail_from="airflow@example.com",
        timeout=5.0,
    )
    assert "s3cret" not in repr(smtp)


def test_ssl_defaults_to_port_465() -> None:
    smtp = SmtpSettings.from_env({"SLIPSTREAM_SMTP_HOST": "h", "SLIPSTREAM_SMTP_SSL": "1"})
    assert smtp is not None and smtp.port == 465 and smtp.ssl


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLIPSTREAM_SMTP_SSL": "true", "SLIPSTREAM_SMTP_STARTTLS": "true"}, "SMTP_SSL"),
        ({"SLIPSTREAM_SMTP_PORT": "twenty-five"}, "SMTP_PORT"),
        ({"SLIPSTREAM_SMTP_PASSWORD_FILE": "/nonexistent/pw"}, "SMTP_PASSWORD_FILE"),
        (
            {"SLIPSTREAM_SMTP_PASSWORD": "x", "SLIPSTREAM_SMTP_PASSWORD_FILE": "/etc/hostname"},
            "SMTP_PASSWORD_FILE",
        ),
    ],
)
def test_bad_smtp_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        SmtpSettings.from_env({"SLIPSTREAM_SMTP_HOST": "h", **env})


def test_the_web_secret_key_comes_from_the_setting_or_its_file(tmp_path: Path) -> None:
    assert Settings.from_env({"SLIPSTREAM_HOME": str(tmp_path)}).web_secret_key is None
    given = Settings.from_env({"SLIPSTREAM_WEB_SECRET_KEY": "k" * 32})
    assert given.web_secret_key == "k" * 32
    assert "k" * 32 not in repr(given)
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file-0123456789\n")
    from_file = Settings.from_env({"SLIPSTREAM_WEB_SECRET_KEY_FILE": str(key_file)})
    assert from_file.web_secret_key == "from-a-file-0123456789"
    home = Settings.from_env({"SLIPSTREAM_HOME": str(tmp_path)})
    assert home.web_secret_key_path == tmp_path / ".web-secret-key"
    assert home.web_session_lifetime == 30 * 24 * 3600


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLIPSTREAM_WEB_SECRET_KEY": "short"}, "SLIPSTREAM_WEB_SECRET_KEY"),
        ({"SLIPSTREAM_WEB_SECRET_KEY_FILE": "/nonexistent/key"}, "SLIPSTREAM_WEB_SECRET_KEY_FILE"),
        (
            {"SLIPSTREAM_WEB_SECRET_KEY": "k" * 32, "SLIPSTREAM_WEB_SECRET_KEY_FILE": "/x"},
            "SLIPSTREAM_WEB_SECRET_KEY_FILE",
        ),
        ({"SLIPSTREAM_WEB_SESSION_LIFETIME_SECONDS": "10"}, "SLIPSTREAM_WEB_SESSION_LIFETIME"),
    ],
)
def test_bad_web_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_the_local_executor_is_the_default_and_celery_takes_its_broker() -> None:
    plain = Settings.from_env({"SLIPSTREAM_HOME": "/tmp/h"})
    assert (plain.executor, plain.celery) == ("local", None)
    celery = Settings.from_env(
        {
            "SLIPSTREAM_HOME": "/tmp/h",
            "SLIPSTREAM_EXECUTOR": "Celery",
            "SLIPSTREAM_CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        }
    )
    assert celery.executor == "celery"
    assert celery.celery is not None
    assert celery.celery.broker_url == "redis://127.0.0.1:6379/0"
    assert celery.celery.visibility_timeout == 300.0
    assert (celery.celery.republish_after, celery.celery.queued_timeout) == (30.0, 600.0)


@pytest.mark.parametrize(
    ("env", "named", "says"),
    [
        ({"SLIPSTREAM_EXECUTOR": "kubernetes"}, "SLIPSTREAM_EXECUTOR", "local, celery"),
        ({"SLIPSTREAM_EXECUTOR": "celery"}, "SLIPSTREAM_CELERY_BROKER_URL", "needs a broker"),
        (
            {"SLIPSTREAM_EXECUTOR": "celery", "SLIPSTREAM_CELERY_BROKER_URL": "sqs://x"},
            "SLIPSTREAM_CELERY_BROKER_URL",
            "Redis or RabbitMQ",
        ),
        (
            {
                "SLIPSTREAM_EXECUTOR": "celery",
                "SLIPSTREAM_CELERY_BROKER_URL": "redis://h:6379/0",
                "SLIPSTREAM_CELERY_RESULT_BACKEND": "redis://h:6379/1",
            },
            "SLIPSTREAM_CELERY_RESULT_BACKEND",
            "no result backend",
        ),
        (
            {
                "SLIPSTREAM_EXECUTOR": "celery",
                "SLIPSTREAM_CELERY_BROKER_URL": "redis://h:6379/0",
                "SLIPSTREAM_CELERY_VISIBILITY_TIMEOUT_SECONDS": "1",
            },
            "SLIPSTREAM_CELERY_VISIBILITY_TIMEOUT_SECONDS",
            "at least 10",
        ),
        (
            {
                "SLIPSTREAM_EXECUTOR": "celery",
                "SLIPSTREAM_CELERY_BROKER_URL": "redis://h:6379/0",
                "SLIPSTREAM_TASK_QUEUED_TIMEOUT_SECONDS": "soon",
            },
            "SLIPSTREAM_TASK_QUEUED_TIMEOUT_SECONDS",
            "expected a number",
        ),
        (
            {
                "SLIPSTREAM_EXECUTOR": "celery",
                "SLIPSTREAM_CELERY_BROKER_URL": "redis://h:6379/0",
                "SLIPSTREAM_CELERY_REPUBLISH_SECONDS": "0",
            },
            "SLIPSTREAM_CELERY_REPUBLISH_SECONDS",
            "at least 1",
        ),
        (
            {"SLIPSTREAM_WORKER_LOG_SERVER_PORT": "70000"},
            "SLIPSTREAM_WORKER_LOG_SERVER_PORT",
            "TCP port",
        ),
    ],
)
def test_bad_executor_settings_name_the_variable(
    env: dict[str, str], named: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SLIPSTREAM_HOME": "/tmp/h", **env})
    assert caught.value.setting == named
    assert says in str(caught.value)


def test_the_worker_host_settings_and_where_it_listens(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings.from_env({"SLIPSTREAM_HOME": str(home)})
    assert (settings.worker_autostart, settings.worker_idle_exit_seconds) == (True, 60.0)
    assert settings.worker_socket_path == home / "worker.sock"
    assert settings.worker_lock_path == home / "worker.lock"
    assert settings.worker_log_path == home / "logs" / "worker" / "worker.out"
    changed = Settings.from_env(
        {
            "SLIPSTREAM_HOME": str(home),
            "SLIPSTREAM_WORKER_AUTOSTART": "false",
            "SLIPSTREAM_WORKER_IDLE_EXIT_SECONDS": "2.5",
        }
    )
    assert (changed.worker_autostart, changed.worker_idle_exit_seconds) == (False, 2.5)
    # Unix socket paths are capped near 108 bytes: a deep home listens under /tmp instead,
    # apart from its wake-up socket.
    deep = Settings.from_env({"SLIPSTREAM_HOME": str(tmp_path / ("d" * 120))})
    assert len(str(deep.worker_socket_path)) < 100
    assert deep.worker_socket_path.name.endswith(".worker")
    assert deep.worker_socket_path != deep.wakeup_path
    assert deep.worker_lock_path.parent == deep.home  # a plain file: no length limit


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLIPSTREAM_WORKER_AUTOSTART": "sometimes"}, "SLIPSTREAM_WORKER_AUTOSTART"),
        ({"SLIPSTREAM_WORKER_IDLE_EXIT_SECONDS": "-1"}, "SLIPSTREAM_WORKER_IDLE_EXIT_SECONDS"),
        ({"SLIPSTREAM_WORKER_IDLE_EXIT_SECONDS": "soon"}, "SLIPSTREAM_WORKER_IDLE_EXIT_SECONDS"),
    ],
)
def test_bad_worker_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)
