"""The database handle: an async SQLAlchemy engine, write transactions, schema checks at start."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)

from hpcwaas.store import sqlite_loop

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# A quick read on SQLite waits at most this long for a lock (it blocks the event loop).
_QUICK_READ_BUSY_MS = 200

T = TypeVar("T")
# The PostgreSQL advisory lock that serializes schema creation and upgrades between the
# replicas and `hpcwaas-api db upgrade` runs sharing a database (any fixed 64-bit number
# no other program on that database uses: these are the bytes of "hpcwaas").
SCHEMA_LOCK_ID = 0x68706377616173
_MAX_RETRY_DELAY = 5.0
# How long a SQLite writer waits for another process to release the write lock.
_SQLITE_LOCK_WAIT_SECONDS = 10.0


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` is the database not answering now (stopped, restarting, unreachable).

    Not a wrong query (a bug: a 500), and not another service (an SSH host, the identity
    provider) not answering: only errors raised by the database layer count.
    """
    from_database = down = False
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DatabaseUnavailable):
            return True
        if isinstance(seen, DBAPIError):
            from_database = True
            if seen.connection_invalidated or isinstance(seen, InterfaceError):
                down = True
            elif isinstance(seen, OperationalError):
                down = down or _server_is_down(seen)
        elif type(seen).__module__.startswith("asyncpg"):
            from_database = True
            down = down or type(seen).__name__ in _ASYNCPG_DOWN
        elif isinstance(seen, OSError):  # refused, reset, timed out (TimeoutError is one)
            down = True
        seen = seen.__cause__ or seen.__context__
    return from_database and down


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is the database's disk being full (an outage that ends once space is
    freed)."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "DiskFullError" or "database or disk is full" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def check_connection(conn: AsyncConnection) -> None:
    """Run one trivial statement: raises if the database does not answer it."""
    await conn.execute(text("SELECT 1"))


# Below this much free space beside a SQLite file, writes are about to fail: not ready.
SQLITE_MIN_FREE_BYTES = 1 << 20


def sqlite_disk_problem(db: Database) -> str | None:
    """Why the disk of ``db``'s SQLite file cannot take writes now, or None."""
    if db.sqlite_file is None:
        return None
    free = shutil.disk_usage(db.sqlite_file.parent).free
    if free >= SQLITE_MIN_FREE_BYTES:
        return None
    return f"the disk of {db.sqlite_file.parent} is full ({free} bytes free)"


def _server_is_down(error: OperationalError) -> bool:
    """An OperationalError of a server database is about the connection; SQLite's are too
    only when the file cannot be used now (it also raises them for a missing table)."""
    if "sqlite" not in type(error.orig).__module__:
        return True
    message = str(error.orig).lower()
    return any(words in message for words in _SQLITE_DOWN)


_SQLITE_LOCKED = "database is locked"
# A full disk is an outage too: writes work again once space is freed.
_SQLITE_DOWN = (
    _SQLITE_LOCKED,
    "unable to open database",
    "disk i/o error",
    "database or disk is full",
)

# asyncpg's errors for a server that is gone, starting up or shutting down
_ASYNCPG_DOWN = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "InterfaceError",
        "PostgresConnectionError",
        "DiskFullError",
    }
)


def _is_locked(error: OperationalError) -> bool:
    """Whether SQLite refused because another connection holds the lock."""
    return _SQLITE_LOCKED in str(error.orig).lower()


class SchemaError(Exception):
    """The database schema cannot be used by this version; the message says what to run."""


class DatabaseUnavailable(Exception):
    """The database does not answer now (stopped, restarting, unreachable); retry later.

    The message names the database by its URL without the password, and the cause.
    """


class Database:
    """One per process. ``read()`` for queries, ``write()`` for a transaction that changes rows."""

    def __init__(
        self, url: str, *, pool_size: int | None = None, connect_timeout: float | None = None
    ) -> None:
        """``pool_size``: connections kept open to a server database (PostgreSQL), per
        process; ``connect_timeout``: seconds to wait for a new connection to one."""
        self.url = url
        # How long read()/write() wait for an unreachable database (see ``waiting``).
        self.wait_seconds = 0.0
        self.is_sqlite = url.startswith("sqlite")
        # The database file, for SQLite on a file (not in memory).
        sqlite_file = url.split(":///", 1)[1] if self.is_sqlite and ":///" in url else ""
        if sqlite_file == ":memory:":
            sqlite_file = ""
        if sqlite_file:
            make_sqlite_file_private(Path(sqlite_file))
        self.sqlite_file = Path(sqlite_file) if sqlite_file else None
        # An error's message never quotes the statement's values (token hashes, sealed
        # secrets, users' inputs) into the log.
        options: dict[str, Any] = {"hide_parameters": True}
        if not self.is_sqlite:
            # pre-ping: a connection the server dropped (restart, failover) is replaced
            # instead of failing the request that draws it from the pool.
            options["pool_pre_ping"] = True
            if pool_size is not None:
                options["pool_size"] = pool_size
            if connect_timeout is not None and url.startswith("postgresql+asyncpg"):
                options["connect_args"] = {"timeout": connect_timeout}
        if sqlite_file:
            # Statements on the loop's thread (see sqlite_loop): no hand-over per statement.
            options["async_creator"] = sqlite_loop.creator(sqlite_file)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        # SQLite allows one writer: serialize this process's writers here; another process
        # holding the write lock is waited for in write(), without blocking the loop.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._writer = _WriterSlot()
        self._quick: _QuickReads | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        if sqlite_file:
            self._quick = _QuickReads(url)

    def waiting(self, seconds: float) -> Database:
        """The same database, whose read()/write() wait up to ``seconds`` for it to come back.

        For the engine: a database restart then delays its work instead of failing it. The
        API keeps the impatient handle, so that a request gets its 503 at once.
        """
        view = copy.copy(self)
        view.wait_seconds = seconds
        return view

    async def until_recorded(
        self,
        op: Callable[[AsyncConnection], Awaitable[T]],
        *,
        keep_trying: Callable[[], bool],
        on_wait: Callable[[BaseException], None] | None = None,
        write: bool = True,
    ) -> T:
        """Run ``op`` in a transaction (a read when not ``write``); its result.

        While the database is unavailable, wait and run it again, for as long as
        ``keep_trying()`` (``on_wait`` is told when the first try fails). For work that goes
        on without the database, such as a running step, and records itself once it is back.
        A retried ``op`` must be safe to run twice: its first commit may have landed.
        """
        delay = 0.5
        told = False
        while True:
            try:
                if write:
                    async with self.write() as conn:
                        return await op(conn)
                async with self.read() as conn:
                    return await op(conn)
            except Exception as exc:
                if not is_unavailable(exc) or not keep_trying():
                    raise
                if on_wait is not None and not told:
                    on_wait(exc)
                told = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_DELAY)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._connection() as conn:
            yield conn

    async def quick_read(self, query: Callable[[Connection], T]) -> T:
        """Run ``query``, one indexed SELECT, with a plain (sync) connection; its result.

        On a SQLite file it runs right here on the event loop with the sqlite3 driver: a WAL
        read never waits for writers and takes tens of microseconds, where aiosqlite's thread
        and SQLAlchemy's async bridge cost about a millisecond of CPU per request. That is
        for the hot routes (``GET /executions/{id}``); anything slow or large uses ``read()``.
        Elsewhere it runs on an async connection through ``run_sync``.
        """
        if self._quick is not None:
            return self._quick.run(query)
        async with self._connection() as async_conn:
            return await async_conn.run_sync(query)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction committed on exit, rolled back on error."""
        if self._write_lock is None:
            async with self._connection() as conn, conn.begin():
                yield conn
            return
        async with self._write_lock:
            # BEGIN IMMEDIATE takes SQLite's write lock up front. Another process (an admin
            # command) may hold it: wait here, off the loop, as busy_timeout would on it.
            deadline = time.monotonic() + _SQLITE_LOCK_WAIT_SECONDS
            delay = 0.002
            while True:
                conn = await self._sqlite_writer()
                transaction = conn.begin()
                try:
                    await transaction.start()
                except OperationalError as exc:
                    await self._close_sqlite_writer()
                    if not _is_locked(exc) or time.monotonic() + delay > deadline:
                        raise
                else:
                    try:
                        yield conn
                    except BaseException:
                        await self._end_failed(transaction)
                        raise
                    try:
                        await transaction.commit()
                    except BaseException:
                        # A commit that failed (a full disk) can leave the connection in a
                        # transaction it cannot end: the next write starts on a fresh one.
                        await self._close_sqlite_writer()
                        raise
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)

    async def _sqlite_writer(self) -> AsyncConnection:
        """SQLite's writer connection: kept open between transactions (the write lock makes
        it this process's only writer), saving a pool checkout and checkin per write."""
        if self._writer.conn is None:
            conn = await self._connect()
            self._writer.conn = await conn.execution_options(hpcwaas_immediate=True)
        return self._writer.conn

    async def _close_sqlite_writer(self) -> None:
        conn, self._writer.conn = self._writer.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it may be what failed
                await conn.close()

    async def _end_failed(self, transaction: AsyncTransaction) -> None:
        """Roll back after an error; a connection that cannot is replaced next time."""
        try:
            await transaction.rollback()
        except Exception:
            await self._close_sqlite_writer()
            raise
        if self._writer.conn is not None and self._writer.conn.invalidated:
            await self._close_sqlite_writer()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        conn = await self._connect()
        try:
            yield conn
        finally:
            await conn.close()

    async def _connect(self) -> AsyncConnection:
        """A started connection; retried while the database is unreachable, up to wait_seconds."""
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.2
        while True:
            conn = self.engine.connect()
            try:
                return await conn.start()
            except Exception as exc:
                # Connecting is talking to the database: a refused or timed-out one is down.
                if not (is_unavailable(exc) or isinstance(exc, OSError)):
                    raise
                if time.monotonic() + delay > deadline:
                    raise self._unavailable(exc) from exc
                log.warning(
                    "the database is unreachable (%s); retrying in %.1f s",
                    type(exc).__name__,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_DELAY)

    def _unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        reason = str(exc) or type(exc).__name__
        return DatabaseUnavailable(
            f"the database at {_safe_url(self.url)} is unreachable ({reason})"
        )

    async def dispose(self) -> None:
        await self._close_sqlite_writer()
        if self._quick is not None:
            self._quick.close()
        await self.engine.dispose()

    async def prepare_schema(self, *, allow_upgrade: bool | None = None) -> str:
        """Create or check the schema as docs/operator-guide.md says; return what was done.

        An empty database is created at head; an older one is upgraded on SQLite and
        refused elsewhere (unless ``allow_upgrade``); an unknown or newer one is refused.
        """
        upgrade_ok = self.is_sqlite if allow_upgrade is None else allow_upgrade
        try:
            return await self._prepare_schema(upgrade_ok)
        except (SchemaError, DatabaseUnavailable):
            raise
        except Exception as exc:
            if is_unavailable(exc):
                raise self._unavailable(exc) from exc
            raise

    async def _prepare_schema(self, upgrade_ok: bool) -> str:
        async with self._connection() as conn:
            if self.is_sqlite:
                result: str = await conn.run_sync(_prepare, upgrade_ok, self.url)
                await conn.commit()
                return result
            # Replicas starting together on an empty database would all try to create it:
            # one prepares the schema, the others wait here and then find it current.
            await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": SCHEMA_LOCK_ID})
            await conn.commit()
            try:
                result = await conn.run_sync(_prepare, upgrade_ok, self.url)
                await conn.commit()
            finally:
                # A session lock outlives transactions and the connection goes back to the
                # pool open: release it explicitly, after ending a failed transaction.
                await conn.rollback()
                await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": SCHEMA_LOCK_ID})
                await conn.commit()
        return result


def make_sqlite_file_private(sqlite_file: Path) -> None:
    """Create the SQLite file 0600 in a 0700 directory; tighten one others can read."""
    # It holds token hashes, sealed secrets and inputs: private to the server's account, as
    # master.key is. SQLite creates -wal and -shm with the mode of the main file.
    sqlite_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(sqlite_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (sqlite_file, Path(f"{sqlite_file}-wal"), Path(f"{sqlite_file}-shm")):
        try:
            found = path.stat()
        except FileNotFoundError:
            continue
        if found.st_mode & 0o077 and found.st_uid == os.getuid():
            os.chmod(path, 0o600)
            log.warning(
                "%s was readable by other users (mode %o): made it 0600",
                path,
                found.st_mode & 0o777,
            )


def _sqlite_settings(dbapi_conn: Any, busy_timeout_ms: int) -> None:
    """What every SQLite connection of the server sets when it opens.

    ``busy_timeout_ms``: how long SQLite itself may wait for a lock. The statements run on
    the event loop (see sqlite_loop), where such a wait would stop everything.
    """
    # Let SQLAlchemy's "begin" event emit BEGIN, so writers can take the lock up front.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cur.close()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # None: a writer waits for another process's lock in Database.write(), off the loop.
        _sqlite_settings(dbapi_conn, 0)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("hpcwaas_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class _WriterSlot:
    """Holds SQLite's writer connection; shared by a Database and its ``waiting`` views."""

    conn: AsyncConnection | None = None


class _QuickReads:
    """Quick reads on a SQLite file: a sync engine and its one connection, kept open (only
    the event loop's thread uses it)."""

    def __init__(self, url: str) -> None:
        self._engine = _quick_read_engine(url)
        self._conn: Connection | None = None

    def run(self, query: Callable[[Connection], T]) -> T:
        if self._conn is None:
            self._conn = self._engine.connect()
        conn = self._conn
        transaction = conn.begin()
        try:
            return query(conn)
        finally:
            transaction.rollback()
            if conn.invalidated:  # the file went away, say: a new connection next time
                self._conn = None
                conn.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()


def _quick_read_engine(url: str) -> Engine:
    """A sync engine on the same SQLite file, for reads made on the event loop's thread."""
    # hide_parameters as on the async engine: token hashes go through here.
    engine = create_engine(make_url(url).set(drivername="sqlite"), hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # A short wait: a WAL read waits only while the file is being recovered.
        _sqlite_settings(dbapi_conn, _QUICK_READ_BUSY_MS)

    # No BEGIN: a quick read is one statement, which SQLite runs on one snapshot anyway.
    return engine


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _prepare(connection: Connection, upgrade_ok: bool, url: str) -> str:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(connection)
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    current = MigrationContext.configure(connection).get_current_revision()
    if current == head:
        return "current"
    if current is None:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
        if tables:
            raise SchemaError(
                f"the database at {_safe_url(url)} holds tables ({', '.join(sorted(tables))}) "
                "but no hpcwaas schema version: point database_url at an empty database"
            )
        command.upgrade(cfg, "head")
        return "created"
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise SchemaError(
            f"the database schema is at revision {current}, which this version of hpcwaas "
            "does not know (it is newer, or from another program): upgrade hpcwaas"
        )
    if not upgrade_ok:
        raise SchemaError(
            f"the database schema is at revision {current}, older than this version's {head}: "
            "run `hpcwaas-api db upgrade` (with the same --config) and start again"
        )
    command.upgrade(cfg, "head")
    return "upgraded"


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
