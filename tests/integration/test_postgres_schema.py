"""Schema handling on a real PostgreSQL server through the real `hpcwaas-api` command: an empty
database is created, an older schema is refused until `hpcwaas-api db upgrade`, an unknown one
is refused, and replicas starting together on an empty database do not race."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from tests.conftest import BIN, LiveServer, free_port
from tests.pg_support import Postgres

from hpcwaas.store.database import Database, _alembic_config
from hpcwaas.store.tables import metadata


def _hpcwaas_api(data_dir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hpcwaas-api"), "--data_dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HPCWAAS_DATABASE_URL": database_url},
        timeout=60,
    )


async def _at_revision(url: str, revision: str) -> None:
    """Bring an empty database to an old schema revision, as an older version left it."""
    db = Database(url)
    try:
        async with db.write() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), revision))
    finally:
        await db.dispose()


async def _schema_diff(url: str) -> list[object]:
    db = Database(url)
    try:
        async with db.read() as conn:
            diff: list[object] = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        return diff
    finally:
        await db.dispose()


def _serve_once(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    """Start `hpcwaas-api` (serve) on the database and expect it to stop by itself."""
    return _hpcwaas_api(tmp_path / "data", database_url, "-l", f"127.0.0.1:{free_port()}")


async def test_replicas_preparing_an_empty_database_together_create_it_once(
    postgres_url: str,
) -> None:
    replicas = [Database(postgres_url) for _ in range(5)]
    try:
        outcomes = await asyncio.gather(*(db.prepare_schema() for db in replicas))
    finally:
        for db in replicas:
            await db.dispose()
    assert sorted(outcomes) == ["created"] + ["current"] * 4
    assert await _schema_diff(postgres_url) == []


def test_db_upgrade_commands_run_together_on_an_empty_database_all_succeed(
    postgres_url: str, tmp_path: Path
) -> None:
    runs = [
        subprocess.Popen(
            [str(BIN / "hpcwaas-api"), "--data_dir", str(tmp_path / "data"), "db", "upgrade"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "HPCWAAS_DATABASE_URL": postgres_url},
        )
        for _ in range(4)
    ]
    results = [(run.communicate(timeout=60), run.returncode) for run in runs]
    assert [code for _, code in results] == [0] * 4, [err for (_, err), _ in results]
    said = sorted(out.strip() for (out, _), _ in results)
    assert said == ["database schema created"] + ["database schema current"] * 3


async def test_an_older_schema_is_refused_at_start_until_db_upgrade(
    postgres: Postgres, postgres_url: str, tmp_path: Path
) -> None:
    await _at_revision(postgres_url, "0006")

    refused = _serve_once(tmp_path, postgres_url)
    assert refused.returncode == 1
    assert "older than this version" in refused.stderr
    assert "run `hpcwaas-api db upgrade`" in refused.stderr
    assert postgres.password not in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr

    upgraded = _hpcwaas_api(tmp_path / "data", postgres_url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == "database schema upgraded"
    assert await _schema_diff(postgres_url) == []

    live = LiveServer(tmp_path / "data", free_port(), database_url=postgres_url).start()
    try:
        assert live.admin("db", "upgrade").stdout.strip() == "database schema current"
    finally:
        live.stop()


async def test_an_unknown_schema_revision_is_refused_by_serve_and_by_db_upgrade(
    postgres_url: str, tmp_path: Path
) -> None:
    db = Database(postgres_url)
    try:
        await db.prepare_schema()
        async with db.write() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'future99'"))
    finally:
        await db.dispose()

    for result in (
        _serve_once(tmp_path, postgres_url),
        _hpcwaas_api(tmp_path / "data", postgres_url, "db", "upgrade"),
    ):
        assert result.returncode == 1
        assert "revision future99, which this version of hpcwaas does not know" in result.stderr
        assert "upgrade hpcwaas" in result.stderr


async def test_a_database_holding_other_tables_is_refused_without_its_password(
    postgres: Postgres, postgres_url: str, tmp_path: Path
) -> None:
    db = Database(postgres_url)
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE invoices (id INTEGER)"))
    finally:
        await db.dispose()

    refused = _serve_once(tmp_path, postgres_url)
    assert refused.returncode == 1
    assert "holds tables (invoices)" in refused.stderr
    assert "point database_url at an empty database" in refused.stderr
    assert "hpcwaas:***@127.0.0.1" in refused.stderr
    assert postgres.password not in refused.stderr + refused.stdout
