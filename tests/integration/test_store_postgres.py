"""The store on a real PostgreSQL server: the schema at head equals tables.py."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hpcwaas.store.database import Database
from hpcwaas.store.tables import metadata


async def test_empty_postgres_database_is_created_at_the_schema_of_tables_py(
    postgres_url: str,
) -> None:
    db = Database(postgres_url)
    try:
        assert await db.prepare_schema() == "created"
        assert await db.prepare_schema() == "current"
        async with db.read() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert diff == [], "the migrations and tables.py disagree on PostgreSQL"
    finally:
        await db.dispose()
