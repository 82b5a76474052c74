"""log_format: the servers' own log lines as JSON objects."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from slipstream.config import Settings
from slipstream.errors import ConfigError
from slipstream.log_format import JsonFormatter


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "slipstream.scheduler.loop", logging.WARNING, __file__, 1, "pass %s of %d", ("x", 3), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_record_is_one_json_object_with_its_extra_fields() -> None:
    line = JsonFormatter().format(_record(dag_id="etl", try_number=2))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "slipstream.scheduler.loop"
    assert entry["message"] == "pass x of 3"
    assert entry["timestamp"].endswith("+00:00")
    assert entry["dag_id"] == "etl" and entry["try_number"] == 2
    assert "args" not in entry and "msg" not in entry  # the message as written, once


def test_a_traceback_is_a_field_of_the_same_line() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: bad value" in entry["exc_info"]


def test_the_format_is_text_or_json() -> None:
    base = {"SLIPSTREAM_HOME": "/tmp/h"}
    assert Settings.from_env(base).log_format == "text"
    assert Settings.from_env({**base, "SLIPSTREAM_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="SLIPSTREAM_LOG_FORMAT"):
        Settings.from_env({**base, "SLIPSTREAM_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="SLIPSTREAM_METRICS_PUBLIC"):
        Settings.from_env({**base, "SLIPSTREAM_METRICS_PUBLIC": "maybe"})
