"""The log formats: JSON lines and text, both with the request ID when there is one."""

from __future__ import annotations

import json
import logging
import sys

from hpcwaas.controls import CONTROL
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


FORGED = "2026-01-01 00:00:00,000 INFO hpcwaas.access: GET /forged 200 1.0ms"
CONTROLS = "\x00\x1b]0;title\x07\x1b[2J\x7f\x85\u2028\u2029\r\t"


def test_text_formatter_escapes_every_control_character_in_a_message() -> None:
    record = _record("%s %s %d", "GET", f"/x\n{FORGED}{CONTROLS}", 404)
    line = TextFormatter().format(record)
    assert line.splitlines() == [line]
    assert line.endswith(
        "WARNING hpcwaas.test: GET /x\\n"
        + FORGED
        + "\\x00\\x1b]0;title\\x07\\x1b[2J\\x7f\\x85\\u2028\\u2029\\r\\t 404"
    )


def test_text_formatter_indents_a_traceback_so_no_line_passes_for_a_record() -> None:
    try:
        raise ValueError(f"bad value\n{FORGED}\x00")
    except ValueError:
        record = logging.LogRecord(
            "hpcwaas.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    first, *rest = TextFormatter().format(record).split("\n")
    assert first.endswith("ERROR hpcwaas.test: failed")
    assert rest[0] == "  Traceback (most recent call last):"
    assert rest[-2:] == ["  ValueError: bad value", f"  {FORGED}\\x00"]
    assert all(line.startswith("  ") for line in rest)


def test_json_formatter_escapes_every_control_character_and_keeps_the_value() -> None:
    message = f"/x\n{FORGED}{CONTROLS}"
    line = JsonFormatter().format(_record("%s", message))
    assert line.splitlines() == [line]
    assert CONTROL.search(line) is None
    assert json.loads(line)["message"] == message
