"""Settings and services for one CLI command; configuration errors are reported like any
other, and what is opened is closed when the command ends."""

from __future__ import annotations

import sys

import click

from slipstream.bootstrap import Services, build_services
from slipstream.config import Settings
from slipstream.errors import ConfigError


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(5)


def open_services() -> Services:
    services = build_services(load_settings())
    click.get_current_context().call_on_close(services.close)
    return services
