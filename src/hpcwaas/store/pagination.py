"""Opaque cursors for keyset pagination: (created_at, id) of the last item returned."""

from __future__ import annotations

import base64
import json
from datetime import datetime


class BadCursor(ValueError):
    """The cursor was not produced by this server."""


def encode_cursor(created_at: datetime, item_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, item_id = json.loads(raw)
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or not isinstance(item_id, str):
            raise ValueError
    except (ValueError, TypeError) as exc:
        raise BadCursor(
            "cursor is not valid: pass the next_cursor value of a previous page unchanged"
        ) from exc
    return when, item_id
