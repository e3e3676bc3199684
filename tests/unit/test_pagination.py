"""Opaque cursors: round trip, and a clear error for anything else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hpcwaas.store.pagination import BadCursor, decode_cursor, encode_cursor


def test_cursor_round_trips() -> None:
    when = datetime(2026, 11, 25, 12, 0, 1, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(when, "abc")) == (when, "abc")


@pytest.mark.parametrize("cursor", ["garbage!", "e30", "WzEsMl0", "", "W251bGwsICJ4Il0"])
def test_foreign_cursor_is_refused_with_a_hint(cursor: str) -> None:
    with pytest.raises(BadCursor, match="next_cursor"):
        decode_cursor(cursor)
