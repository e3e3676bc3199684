"""The log formats: JSON lines and text, both with the request ID when there is one."""

from __future__ import annotations

import json
import logging
import sys

from hpcwaas.logging_setup import JsonFormatter, RequestIdFilter, TextFormatter, request_id_var


def _record(msg: str = "hello %s", *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("hpcwaas.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_json_formatter_one_object_per_line_with_request_id() -> None:
    record = _record("hello %s", "world")
    token = request_id_var.set("abc-123")
    try:
        assert RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "hpcwaas.test"
    assert entry["message"] == "hello world"
    assert entry["request_id"] == "abc-123"
    assert entry["time"].endswith("+00:00") and "T" in entry["time"]
    assert "exc_info" not in entry


def test_json_formatter_without_request_id_and_with_exception() -> None:
    record = _record("failed", exc=True)
    RequestIdFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert "request_id" not in entry
    assert "ValueError: boom" in entry["exc_info"]
    assert "Traceback" in entry["exc_info"]


def test_text_formatter_appends_request_id_when_present() -> None:
    record = _record("plain")
    RequestIdFilter().filter(record)
    assert TextFormatter().format(record).endswith("WARNING hpcwaas.test: plain")
    record.request_id = "r-1"
    assert TextFormatter().format(record).endswith("WARNING hpcwaas.test: plain [r-1]")
