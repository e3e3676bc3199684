"""Database.quick_read: the hot routes' reads on a plain connection (hpcwaas.store.database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest

from hpcwaas.api.states import ExecutionStatus, StepState
from hpcwaas.store import executions, users
from hpcwaas.store.database import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'hpcwaas.sqlite3'}")
    await database.prepare_schema()
    async with database.write() as conn:
        await users.ensure_user(conn, "alice")
        await executions.create_execution(
            conn,
            execution_id="exec-1",
            owner="alice",
            workflow_id="demo@local@sweep",
            application="demo",
            environment="local",
            workflow="sweep",
            inputs={},
            definition_digest="0" * 64,
            step_names=["prepare", "gather"],
        )
    yield database
    await database.dispose()


async def test_quick_read_returns_the_execution_and_its_steps_in_order(db: Database) -> None:
    found = await db.quick_read(
        partial(executions.read_execution_with_steps, execution_id="exec-1")
    )
    assert found is not None
    record, steps = found
    assert record.id == "exec-1" and record.status == ExecutionStatus.PENDING
    assert [s.name for s in steps] == ["prepare", "gather"]


async def test_quick_read_hides_someone_elses_execution(db: Database) -> None:
    read = partial(executions.read_execution_with_steps, execution_id="exec-1", owner="bob")
    assert await db.quick_read(read) is None


async def test_quick_read_sees_a_write_committed_just_before(db: Database) -> None:
    read = partial(executions.read_execution_with_steps, execution_id="exec-1")
    await db.quick_read(read)  # a pooled connection that has read before
    async with db.write() as conn:
        await executions.update_step(
            conn, "exec-1", "prepare", StepState.RUNNING, expected={StepState.PENDING}
        )
    found = await db.quick_read(read)
    assert found is not None
    assert found[1][0].state == StepState.RUNNING
