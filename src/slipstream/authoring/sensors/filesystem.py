"""FileSensor: waits for a file or folder (a glob pattern) under the base path of a filesystem
connection (`fs_default`: its extra's "path")."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from slipstream.authoring.exceptions import AirflowNotFoundException
from slipstream.authoring.sensors.base import BaseSensorOperator, log
from slipstream.authoring.variables import BaseHook

if TYPE_CHECKING:
    from slipstream.authoring.context import Context

DEFAULT_CONN_ID = "fs_default"


class FileSensor(BaseSensorOperator):
    """Done when `filepath` (a glob pattern, relative to the connection's base path) matches a
    file, or a folder with a file in it (at any depth). `recursive` lets `**` match folders."""

    template_fields: ClassVar[Sequence[str]] = ("filepath",)

    def __init__(
        self,
        *,
        filepath: str,
        fs_conn_id: str = DEFAULT_CONN_ID,
        recursive: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filepath = filepath
        self.fs_conn_id = fs_conn_id
        self.recursive = bool(recursive)

    def base_path(self) -> str:
        try:
            connection = BaseHook.get_connection(self.fs_conn_id)
        except AirflowNotFoundException:
            if self.fs_conn_id != DEFAULT_CONN_ID:
                raise
            # Airflow creates fs_default with no base path: paths are taken as written.
            return ""
        return str(connection.extra_dejson.get("path", ""))

    def poke(self, context: Context) -> bool:
        full_path = os.path.join(self.base_path(), self.filepath)
        log.info("Poking for file %s", full_path)
        for path in glob.glob(full_path, recursive=self.recursive):
            if os.path.isfile(path):
                log.info("Found file %s", path)
                return True
            for _, _, files in os.walk(path):
                if files:
                    log.info("Found a file in folder %s", path)
                    return True
        return False
