"""Building Settings for a CLI command, with configuration errors reported like any other."""

from __future__ import annotations

import sys

import click

from slipstream.config import Settings
from slipstream.errors import ConfigError


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(5)
