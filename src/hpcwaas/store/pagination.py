"""Opaque cursors for keyset pagination: (created_at, id) of the last item returned.

A cursor is ``<created_at in microseconds since 1970>.<id>``: any string of that form
(hpcwaas.api.parameters.KEYSET_CURSOR) is a position in the list, so that the OpenAPI
document can declare exactly which cursors are accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, and_, or_
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.parameters import KEYSET_CURSOR, matches

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class BadCursor(ValueError):
    """The cursor was not produced by this server."""


def encode_cursor(created_at: datetime, item_id: str) -> str:
    """The cursor of the page after the item created at ``created_at`` with ID ``item_id``."""
    return f"{(created_at - _EPOCH) // _MICROSECOND}.{item_id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor names; BadCursor if it is not of the cursors' form."""
    if not matches(KEYSET_CURSOR, cursor):
        raise BadCursor(
            "cursor is not valid: pass the next_cursor value of a previous page unchanged"
        )
    micros, item_id = cursor.split(".", 1)
    return _EPOCH + int(micros) * _MICROSECOND, item_id


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
