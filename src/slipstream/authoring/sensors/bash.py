"""BashSensor: pokes by running a bash command; exit code 0 ends the wait."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from slipstream.authoring.exceptions import AirflowFailException
from slipstream.authoring.sensors.base import BaseSensorOperator, log

if TYPE_CHECKING:
    from slipstream.authoring.context import Context


class BashSensor(BaseSensorOperator):
    """Exit 0: done. Any other exit: not yet; or, with retry_exit_code set, only that code
    means not yet and any other non-zero exit fails the task (as Airflow)."""

    template_fields: ClassVar[Sequence[str]] = ("bash_command", "env")
    template_ext: ClassVar[Sequence[str]] = (".sh", ".bash")

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        output_encoding: str = "utf-8",
        retry_exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = dict(env) if env is not None else None
        self.output_encoding = output_encoding
        self.retry_exit_code = retry_exit_code

    def poke(self, context: Context) -> bool:
        with tempfile.TemporaryDirectory(prefix="slipstreamtmp") as cwd:
            log.info("Running command: %s", self.bash_command)
            completed = subprocess.run(
                ["bash", "-c", self.bash_command],
                cwd=cwd,
                env=self.env if self.env is not None else dict(os.environ),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                check=False,
            )
        for line in completed.stdout.decode(self.output_encoding, "replace").splitlines():
            log.info("%s", line)
        code = completed.returncode
        log.info("Command exited with return code %d", code)
        if code == 0:
            return True
        if self.retry_exit_code is not None and code != self.retry_exit_code:
            raise AirflowFailException(f"command failed with exit code {code}")
        return False
