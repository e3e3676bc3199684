"""SQLite connections whose statements run on the event loop's own thread.

SQLAlchemy's async SQLite support goes through aiosqlite, which runs each statement on a
thread of its own and hands the result back to the event loop: a round trip through the
loop per statement. Under load each round trip waits for the loop to get through everything
else that is ready, and a write transaction holds SQLite's one write lock through all of its
round trips, so the writes of the whole process queue behind that wait (the trigger
benchmark topped out at about 130 transactions per second, its server mostly idle).

A SQLite statement on a small indexed table takes microseconds, less than the hand-over.
The objects here offer aiosqlite's interface, the one SQLAlchemy's ``sqlite+aiosqlite``
dialect drives, but run each call at once on the calling thread, so a transaction runs
without yielding to the loop. The connection waits for no lock: ``busy_timeout`` is 0 (a
wait would stop the loop), and ``Database`` retries taking the write lock, asynchronously,
when another process holds it.

Use with ``create_async_engine("sqlite+aiosqlite:///path", async_creator=...)``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any


class LoopCursor:
    """An aiosqlite-like cursor over a ``sqlite3.Cursor``; every call completes at once."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> LoopCursor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> LoopCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> LoopCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _Immediate:
    """Runs what aiosqlite would queue for its thread right away (SQLAlchemy sets the
    connection's isolation level through aiosqlite's queue)."""

    @staticmethod
    def put_nowait(item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # noqa: BLE001 - raised where the caller awaits the future
            future.set_exception(exc)


class LoopConnection:
    """An aiosqlite-like connection over a ``sqlite3.Connection`` used on the loop's thread."""

    _tx = _Immediate()

    def __init__(self, connection: sqlite3.Connection) -> None:
        # The names SQLAlchemy's aiosqlite adapter reads: `_conn` is the sqlite3 connection,
        # `_connection` is truthy while open.
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        self._conn.isolation_level = value

    def cursor(self) -> LoopCursor:
        return LoopCursor(self._conn.cursor())

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (also SQLAlchemy's forced termination)."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def creator(path: str) -> Callable[[], Any]:
    """The ``async_creator`` of an engine on the SQLite file ``path``."""

    async def connect() -> LoopConnection:
        # check_same_thread off: the pool may hand the connection to another thread (its
        # finalizer at exit); this code never uses one connection from two threads at once.
        connection = sqlite3.connect(path, timeout=0, check_same_thread=False)
        return LoopConnection(connection)

    return connect
