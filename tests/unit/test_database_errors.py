"""Which errors are "the database is unreachable" (a 503) and which are not (a 500 or another
service's problem), and how an unreachable database is named in messages."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, ProgrammingError

from hpcwaas.store.database import Database, DatabaseUnavailable, database_unreachable


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def test_a_refused_connection_to_the_database_is_unreachable() -> None:
    error = _chained(
        DatabaseUnavailable("the database at ... is unreachable"),
        ConnectionRefusedError(111, "refused"),
    )
    assert database_unreachable(error)


def test_a_connection_the_database_dropped_mid_query_is_unreachable() -> None:
    dropped = DBAPIError("SELECT 1", None, ConnectionResetError(), connection_invalidated=True)
    assert database_unreachable(dropped)


def test_a_refused_connection_to_another_service_is_not_the_database() -> None:
    # An SSH host or the identity provider refusing must not read "database unreachable".
    assert not database_unreachable(ConnectionRefusedError(111, "refused"))
    assert not database_unreachable(TimeoutError())


def test_a_wrong_query_is_not_unreachable() -> None:
    assert not database_unreachable(ProgrammingError("SELECT nope", None, Exception("syntax")))


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
