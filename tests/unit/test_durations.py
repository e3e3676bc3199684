"""Go-style durations, as the logs endpoint's `timeout` and `tokens issue --ttl` take them."""

from __future__ import annotations

import pytest

from hpcwaas.api.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("1m", 60),
        ("1h30m", 5400),
        ("7d", 604800),
        ("0", 0),
        ("1.5s", 1.5),
        ("2h", 7200),
    ],
)
def test_durations_parse_like_go(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "10", "5 m", "-1s", "1x", "m5"])
def test_malformed_durations_say_what_a_valid_one_looks_like(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (30, "30s"), (90, "1m30s"), (86400, "1d")]
)
def test_durations_format_compactly(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
