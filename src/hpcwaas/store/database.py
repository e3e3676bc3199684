"""The database handle: an async SQLAlchemy engine, write transactions, schema checks at start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# A quick read on SQLite waits at most this long for a lock (it blocks the event loop).
_QUICK_READ_BUSY_MS = 200

T = TypeVar("T")


class SchemaError(Exception):
    """The database schema cannot be used by this version; the message says what to run."""


class Database:
    """One per process. ``read()`` for queries, ``write()`` for a transaction that changes rows."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=not self.is_sqlite)
        # SQLite allows one writer: serialize this process's writers here rather than
        # retrying on "database is locked"; other processes wait on busy_timeout.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._quick: Engine | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            if path and path != ":memory:":
                self._quick = _quick_read_engine(url)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def quick_read(self, query: Callable[[Connection], T]) -> T:
        """Run ``query``, a few indexed SELECTs, with a plain (sync) connection; its result.

        On a SQLite file it runs right here on the event loop with the sqlite3 driver: a WAL
        read never waits for writers and takes tens of microseconds, where aiosqlite's thread
        and SQLAlchemy's async bridge cost about a millisecond of CPU per request. That is
        for the hot routes (``GET /executions/{id}``); anything slow or large uses ``read()``.
        Elsewhere it runs on an async connection through ``run_sync``.
        """
        if self._quick is not None:
            with self._quick.connect() as conn:
                return query(conn)
        async with self.engine.connect() as async_conn:
            return await async_conn.run_sync(query)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction committed on exit, rolled back on error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(hpcwaas_immediate=True)
                async with conn.begin():
                    yield conn

    async def dispose(self) -> None:
        if self._quick is not None:
            self._quick.dispose()
        await self.engine.dispose()

    async def prepare_schema(self, *, allow_upgrade: bool | None = None) -> str:
        """Create or check the schema as DESIGN.md says; return what was done.

        An empty database is created at head; an older one is upgraded on SQLite and
        refused elsewhere (unless ``allow_upgrade``); an unknown or newer one is refused.
        """
        upgrade_ok = self.is_sqlite if allow_upgrade is None else allow_upgrade
        async with self.engine.connect() as conn:
            result: str = await conn.run_sync(_prepare, upgrade_ok, self.url)
            await conn.commit()
        return result


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN, so writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("hpcwaas_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _quick_read_engine(url: str) -> Engine:
    """A sync engine on the same SQLite file, for reads made on the event loop's thread."""
    engine = create_engine(make_url(url).set(drivername="sqlite"))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The same settings as the async engine's, but a short wait for locks: a WAL read
        # waits only while the file is being recovered, and here it would hold up the loop.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={_QUICK_READ_BUSY_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # One snapshot for the queries of one quick read.
        conn.exec_driver_sql("BEGIN")

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
