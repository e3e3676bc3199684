"""SQLite on the event loop (store/sqlite_loop.py): what the server's writes do when another
process holds the file's write lock, and that a failed write leaves the writer usable."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from hpcwaas.store.database import Database


async def _database(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'hpcwaas.sqlite3'}")
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    return db


def _hold_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    """Another process's writer, as `hpcwaas-api` admin commands are: BEGIN IMMEDIATE, wait."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (v) VALUES ('other')")
    held.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


async def test_a_write_waits_for_another_process_lock_without_stopping_the_loop(
    tmp_path: Path,
) -> None:
    db = await _database(tmp_path)
    held = threading.Event()
    holder = threading.Thread(
        target=_hold_write_lock, args=(tmp_path / "hpcwaas.sqlite3", 0.5, held)
    )
    holder.start()
    await asyncio.to_thread(held.wait, 5)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    async with db.write() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('server')"))
    waited = time.monotonic() - started
    ticker.cancel()
    holder.join()
    # It waited for the other writer to commit, and the loop kept running meanwhile.
    assert waited >= 0.4
    assert ticks >= 20
    async with db.read() as conn:
        values = sorted((await conn.execute(text("SELECT v FROM t"))).scalars())
    assert values == ["other", "server"]
    await db.dispose()


async def test_a_failed_write_is_rolled_back_and_the_next_one_commits(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t (id, v) VALUES (1, 'kept?')"))
            await conn.execute(text("INSERT INTO t (id, v) VALUES (1, 'duplicate')"))
    async with db.write() as conn:
        await conn.execute(text("INSERT INTO t (id, v) VALUES (2, 'after')"))
    async with db.read() as conn:
        rows = (await conn.execute(text("SELECT id, v FROM t"))).all()
    assert [tuple(r) for r in rows] == [(2, "after")]
    await db.dispose()
