"""Run `slipstream` commands in-process against a real SQLite home of their own."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from slipstream.cli.main import cli


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
def slipstream(tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    env = {
        "SLIPSTREAM_HOME": str(home),
        "SLIPSTREAM_LOAD_EXAMPLES": "false",
        "SLIPSTREAM_DATABASE_URL": f"sqlite:///{home / 'slipstream.db'}",
    }
    runner = Cli(home, env)
    assert runner("db", "migrate").exit_code == 0
    return runner
