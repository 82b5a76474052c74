"""Run `slipstream` commands in-process against a real SQLite home of their own, its database
a copy of the session's migrated template."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from slipstream.cli.main import cli
from tests.conftest import copy_sqlite_template


@dataclass
class Cli:
    home: Path
    env: dict[str, str]

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)

    def write_dag(self, name: str, source: str) -> Path:
        path = self.home / "dags" / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        return path


@pytest.fixture
def slipstream(sqlite_template: Path, tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    database = copy_sqlite_template(sqlite_template, home / "slipstream.db")
    env = {
        "SLIPSTREAM_HOME": str(home),
        "SLIPSTREAM_LOAD_EXAMPLES": "false",
        "SLIPSTREAM_DATABASE_URL": f"sqlite:///{database}",
    }
    return Cli(home, env)
