"""Which errors are "the database is unreachable" (a 503) and which are not (a 500 or another
service's problem), and how an unreachable database is named in messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError, ProgrammingError

from hpcwaas.store.database import Database, DatabaseUnavailable, is_unavailable


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def test_a_refused_connection_to_the_database_is_unreachable() -> None:
    error = _chained(
        DatabaseUnavailable("the database at ... is unreachable"),
        ConnectionRefusedError(111, "refused"),
    )
    assert is_unavailable(error)


def test_a_connection_the_database_dropped_mid_query_is_unreachable() -> None:
    dropped = DBAPIError("SELECT 1", None, ConnectionResetError(), connection_invalidated=True)
    assert is_unavailable(dropped)


def test_a_refused_connection_to_another_service_is_not_the_database() -> None:
    # An SSH host or the identity provider refusing must not read "database unreachable".
    assert not is_unavailable(ConnectionRefusedError(111, "refused"))
    assert not is_unavailable(TimeoutError())


def test_a_wrong_query_is_not_unreachable() -> None:
    assert not is_unavailable(ProgrammingError("SELECT nope", None, Exception("syntax")))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://hpcwaas:s3cr%40t-pass@127.0.0.1:1/hpcwaas",
        "postgresql+asyncpg://hpcwaas:s3cr%40t-pass@localhost:1/hpcwaas",
    ],
)
async def test_an_unreachable_postgresql_is_named_without_its_password(url: str) -> None:
    db = Database(url, connect_timeout=2)
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            async with db.read():
                pass
    finally:
        await db.dispose()
    message = str(caught.value)
    assert "hpcwaas:***@" in message and "is unreachable" in message
    assert "s3cr" not in message


async def test_a_missing_sqlite_table_is_a_bug_not_an_outage(tmp_path: Path) -> None:
    from sqlalchemy import text

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'a.sqlite3'}")
    try:
        with pytest.raises(Exception) as caught:
            async with db.read() as conn:
                await conn.execute(text("SELECT * FROM nowhere"))
    finally:
        await db.dispose()
    assert "no such table" in str(caught.value)
    assert not is_unavailable(caught.value)
