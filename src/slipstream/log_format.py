"""How the long-running processes write their own logs (not task logs): text lines, or one JSON
object per line (SLIPSTREAM_LOG_FORMAT=json) for log collectors."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s | %(message)s"

# Attributes every LogRecord has: anything else on a record came from `extra=` and is written
# as a field of its own.
_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}
)


class JsonFormatter(logging.Formatter):
    """timestamp (UTC, ISO 8601), level, logger, message, the process id, then any `extra=`
    fields; a traceback as `exc_info` text. Only the message as formatted is written, never
    the record's raw arguments."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(log_format: str = "text") -> None:
    """The root logger writes INFO and up to stderr, as text or JSON lines; as
    logging.basicConfig, it leaves alone a root logger that has handlers already (an
    embedding program's)."""
    # Alembic narrates every migration step at INFO; the outcome is what matters here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def uvicorn_json_config() -> dict[str, Any]:
    """uvicorn's logging config (a dictConfig) for JSON: its loggers hand their records to
    the root logger, which configure_logging gave a JSON handler."""
    passed_on = {"handlers": [], "level": "INFO", "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            name: dict(passed_on) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
