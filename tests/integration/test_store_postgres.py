"""The store behaves the same on SQLite and on a real PostgreSQL server: schema at head equal
to tables.py, round trips of executions, steps, logs, sealed secrets, SSH keys and outputs,
keyset pagination, UTC datetimes and JSON columns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hpcwaas.api.states import ExecutionStatus, LogLevel
from hpcwaas.secrets.embedded import EmbeddedKeyStore, load_or_create_master_key
from hpcwaas.store import executions, keys, logs, outputs
from hpcwaas.store.database import Database
from hpcwaas.store.tables import metadata

ALL_LEVELS = LogLevel(15)


async def _new_execution(db: Database, inputs: dict[str, object] | None = None) -> str:
    execution_id = str(uuid.uuid4())
    async with db.write() as conn:
        await executions.create_execution(
            conn,
            execution_id=execution_id,
            owner="alice",
            workflow_id="demo@local@hello",
            application="demo",
            environment="local",
            workflow="hello",
            inputs=inputs or {},
            definition_digest="d" * 64,
            step_names=["first", "second"],
        )
    return execution_id


async def test_an_empty_database_is_created_at_the_schema_of_tables_py(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        assert await db.prepare_schema() == "created"
        assert await db.prepare_schema() == "current"
        async with db.read() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert diff == [], "the migrations and tables.py disagree"
    finally:
        await db.dispose()


async def test_an_execution_keeps_its_json_inputs_steps_and_aware_utc_times(db: Database) -> None:
    inputs = {"name": "Zoë", "n": 3, "ratio": 0.5, "tags": ["a", "b"], "nested": {"x": None}}
    execution_id = await _new_execution(db, inputs)
    async with db.read() as conn:
        record = await executions.get_execution(conn, execution_id)
        steps = await executions.get_steps(conn, execution_id)
    assert record is not None
    assert record.inputs == inputs
    assert record.status is ExecutionStatus.PENDING
    assert record.created_at.tzinfo is not None
    assert record.created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - record.created_at) < timedelta(minutes=1)
    assert [(s.name, s.position) for s in steps] == [("first", 0), ("second", 1)]


async def test_executions_page_newest_first_with_each_exactly_once(db: Database) -> None:
    created = [await _new_execution(db) for _ in range(7)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        async with db.read() as conn:
            page, cursor = await executions.list_executions(conn, "alice", limit=3, cursor=cursor)
        assert len(page) <= 3
        seen += [r.id for r in page]
        if cursor is None:
            break
    assert seen == list(reversed(created))


async def test_log_entries_keep_order_levels_utc_times_and_odd_characters(
    db: Database,
) -> None:
    execution_id = await _new_execution(db)
    when = datetime(2026, 11, 25, 23, 59, 59, 123456, tzinfo=UTC)
    contents = ["plain", "ünïcødé ✓", "a\ttab", "nul\x00byte", "x" * 20000]
    entries = [
        logs.LogRecord(level=LogLevel.INFO, timestamp=when, content=c, step="first")
        for c in contents
    ] + [logs.LogRecord(level=LogLevel.DEBUG, timestamp=when, content="debug", step=None)]
    async with db.write() as conn:
        await logs.append(conn, execution_id, entries)
    async with db.read() as conn:
        read, total = await logs.read(conn, execution_id, ALL_LEVELS, 0, None)
        info_only, info_total = await logs.read(conn, execution_id, LogLevel.INFO, 1, 2)
        assert await logs.next_index(conn, execution_id) == len(entries)
    assert total == len(entries) and info_total == len(contents)
    assert [r.content for r in read][:3] == contents[:3]
    # PostgreSQL text cannot hold NUL: it reaches the reader as U+FFFD on both backends.
    assert read[3].content == "nul\ufffdbyte"
    assert read[4].content == contents[4]
    assert read[0].timestamp == when
    assert [r.content for r in info_only] == [contents[1], contents[2]]


async def test_sealed_secrets_round_trip_and_are_not_stored_in_clear(
    db: Database, tmp_path: Path
) -> None:
    store = EmbeddedKeyStore(db, load_or_create_master_key(tmp_path / "master.key"))
    await store.put("users/alice/keys/k1", {"private_key": "-----SECRET-MATERIAL-----"})
    assert await store.get("users/alice/keys/k1") == {"private_key": "-----SECRET-MATERIAL-----"}
    async with db.read() as conn:
        from sqlalchemy import select

        from hpcwaas.store.tables import sealed_secrets

        row = (await conn.execute(select(sealed_secrets))).one()
    assert b"SECRET-MATERIAL" not in bytes(row.ciphertext)
    await store.delete("users/alice/keys/k1")
    assert await store.get("users/alice/keys/k1") is None


async def test_ssh_keys_and_outputs_keep_their_json_metadata(db: Database) -> None:
    now = datetime.now(UTC)
    key = keys.SSHKeyRecord(
        id=str(uuid.uuid4()),
        owner="alice",
        public_key="ssh-ed25519 AAAA test",
        fingerprint="SHA256:abc",
        key_type="ed25519",
        metadata={"purpose": "cluster", "labels": ["x", "y"]},
        created_at=now,
    )
    execution_id = await _new_execution(db)
    output = outputs.StoredOutput(
        execution_id=execution_id,
        name="report.txt",
        size=12,
        sha256="0" * 64,
        media_type="text/plain",
        metadata={"lines": 2, "step": "second"},
        path="results/report.txt",
        created_at=now,
    )
    async with db.write() as conn:
        await keys.insert_key(conn, key)
        await outputs.record_output(conn, output)
        await outputs.record_output(conn, output)  # a step run again replaces it
    async with db.read() as conn:
        assert await keys.get_key(conn, key.id, "alice") == key
        assert await keys.get_key(conn, key.id, "bob") is None
        assert await outputs.list_outputs(conn, execution_id) == [output]
