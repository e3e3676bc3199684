"""Opaque cursors for keyset pagination: (created_at, id) of the last item returned."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, and_, or_
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection


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


async def newest_first_page(
    conn: AsyncConnection, table: Table, query: Select[Any], *, limit: int, cursor: str | None
) -> tuple[Sequence[Row[Any]], str | None]:
    """One page of ``query``'s rows, newest ``created_at`` first, and the cursor of the next."""
    created_at, row_id = table.c.created_at, table.c.id
    if cursor:
        when, last_id = decode_cursor(cursor)
        query = query.where(or_(created_at < when, and_(created_at == when, row_id < last_id)))
    rows = list(
        await conn.execute(query.order_by(created_at.desc(), row_id.desc()).limit(limit + 1))
    )
    page = rows[:limit]
    more = len(rows) > limit
    return page, encode_cursor(page[-1].created_at, page[-1].id) if more else None
