"""The SQLite file, its -wal and -shm, and their directory are private to the server's account."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcwaas.store import users
from hpcwaas.store.database import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common umask (022), under which files are created readable by everyone."""
    old = os.umask(0o022)
    yield
    os.umask(old)


async def test_a_new_database_and_its_directory_are_private(tmp_path: Path) -> None:
    sqlite_file = tmp_path / "data" / "hpcwaas.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{sqlite_file}")
    try:
        await db.prepare_schema()
        async with db.write() as conn:
            await users.ensure_user(conn, "alice")
        files = sorted(p.name for p in sqlite_file.parent.iterdir())
        assert files == ["hpcwaas.sqlite3", "hpcwaas.sqlite3-shm", "hpcwaas.sqlite3-wal"]
        assert {name: mode(sqlite_file.parent / name) for name in files} == dict.fromkeys(
            files, 0o600
        )
        assert mode(sqlite_file.parent) == 0o700
    finally:
        await db.dispose()


async def test_an_existing_database_others_can_read_is_made_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sqlite_file = tmp_path / "hpcwaas.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{sqlite_file}")
    await db.prepare_schema()
    await db.dispose()
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    db = Database(f"sqlite+aiosqlite:///{sqlite_file}")
    try:
        await db.prepare_schema()
        assert {mode(p) for p in tmp_path.iterdir()} == {0o600}
        assert f"{sqlite_file} was readable by other users (mode 644): made it 0600" in (
            caplog.messages
        )
    finally:
        await db.dispose()
