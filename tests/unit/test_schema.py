"""Schema handling at start: create, keep, and refuse what this version cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from hpcwaas.store.database import Database, SchemaError


async def test_unknown_schema_revision_is_refused(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'b.sqlite3'}")
    try:
        await db.prepare_schema()
        async with db.write() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'future99'"))
        with pytest.raises(SchemaError, match=r"future99.*upgrade hpcwaas"):
            await db.prepare_schema()
    finally:
        await db.dispose()


async def test_foreign_tables_without_a_version_are_refused(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite3'}")
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE something (id INTEGER)"))
        with pytest.raises(SchemaError, match="something"):
            await db.prepare_schema()
    finally:
        await db.dispose()


async def test_older_schema_is_upgraded_on_sqlite_and_otherwise_refused_with_the_command(
    tmp_path: Path,
) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from hpcwaas.store.database import _alembic_config

    path = tmp_path / "old.sqlite3"
    with create_engine(f"sqlite:///{path}").connect() as sync:
        command.upgrade(_alembic_config(sync), "0001")
        sync.commit()
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        with pytest.raises(SchemaError, match="hpcwaas-api db upgrade"):
            await db.prepare_schema(allow_upgrade=False)
        assert await db.prepare_schema() == "upgraded"
        assert await db.prepare_schema() == "current"
    finally:
        await db.dispose()
