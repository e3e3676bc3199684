"""LogNotifier wake-ups and the LogSink, the single writer of log entries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from hpcwaas.api.states import LogLevel
from hpcwaas.engine.logsink import LogNotifier, LogSink
from hpcwaas.store import executions, logs, users
from hpcwaas.store.database import Database
from hpcwaas.store.tables import log_entries

EXECUTIONS = ["exec-a", "exec-b", "exec-c"]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.prepare_schema()
    async with database.write() as conn:
        await users.ensure_user(conn, "alice")
        for execution_id in EXECUTIONS:
            await executions.create_execution(
                conn,
                execution_id=execution_id,
                owner="alice",
                workflow_id="demo@local@hello",
                application="demo",
                environment="local",
                workflow="hello",
                inputs={},
                definition_digest="0" * 64,
                step_names=["greet"],
            )
    yield database
    await database.dispose()


@pytest.fixture
async def sink(db: Database) -> AsyncIterator[LogSink]:
    log_sink = LogSink(db, LogNotifier())
    log_sink.start()
    yield log_sink
    await log_sink.stop()


async def _indices(db: Database, execution_id: str) -> list[int]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(log_entries.c.idx)
            .where(log_entries.c.execution_id == execution_id)
            .order_by(log_entries.c.idx)
        )
        return [row.idx for row in rows]


async def test_notifier_wait_returns_at_once_when_the_version_already_moved() -> None:
    notifier = LogNotifier()
    seen = notifier.version("x")
    notifier.notify("x")
    start = time.monotonic()
    assert await notifier.wait("x", seen, timeout=5.0)
    assert time.monotonic() - start < 1.0  # not the 5 s timeout
    assert notifier.waiting("x") == 0


async def test_notifier_wait_returns_early_on_notify() -> None:
    notifier = LogNotifier()
    seen = notifier.version("x")
    waiter = asyncio.create_task(notifier.wait("x", seen, timeout=5.0))
    await asyncio.sleep(0.05)
    assert notifier.waiting("x") == 1
    start = time.monotonic()
    notifier.notify("x")
    assert await waiter
    assert time.monotonic() - start < 1.0  # not the 5 s timeout
    assert notifier.waiting("x") == 0


async def test_notifier_wait_times_out_without_a_change_and_cleans_up() -> None:
    notifier = LogNotifier()
    notifier.notify("other")
    start = time.monotonic()
    assert not await notifier.wait("x", notifier.version("x"), timeout=0.1)
    assert time.monotonic() - start >= 0.09
    assert notifier.waiting("x") == 0


async def test_notifier_forgetting_an_execution_never_rewinds_its_version() -> None:
    notifier = LogNotifier()
    notifier.notify("x")
    seen = notifier.version("x")
    notifier.forget("x")
    # A waiter holding the old version must not sleep through: the version moved on.
    assert notifier.version("x") == seen
    notifier.notify("x")
    assert notifier.version("x") > seen


async def test_sink_writes_dense_indices_across_concurrent_emits(
    db: Database, sink: LogSink
) -> None:
    async def producer(execution_id: str, worker: int) -> None:
        for i in range(50):
            sink.emit(execution_id, LogLevel.INFO, f"{worker}:{i}", step="greet")
            if i % 7 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(*(producer(e, w) for e in EXECUTIONS for w in range(3)))
    await sink.flush()
    for execution_id in EXECUTIONS:
        assert await _indices(db, execution_id) == list(range(150))
        async with db.read() as conn:
            records, total = await logs.read(conn, execution_id, LogLevel.INFO, 0, None)
        assert total == 150
        for worker in range(3):
            mine = [r.content for r in records if r.content.startswith(f"{worker}:")]
            assert mine == [f"{worker}:{i}" for i in range(50)]  # emit order kept
        assert all(r.step == "greet" for r in records)


async def test_sink_continues_after_entries_written_before_it_started(db: Database) -> None:
    async with db.write() as conn:
        now = datetime.now(UTC)
        await logs.append(
            conn,
            "exec-a",
            [logs.LogRecord(LogLevel.INFO, now, f"old {i}", None) for i in (0, 1)],
        )
    sink = LogSink(db, LogNotifier())
    sink.start()
    sink.emit("exec-a", LogLevel.ERROR, "new")
    await sink.stop()
    assert await _indices(db, "exec-a") == [0, 1, 2]


async def test_sink_wakes_a_blocked_waiter_once_the_entry_is_visible(
    sink: LogSink, db: Database
) -> None:
    # How fast is the benchmarks' business (tests/bench: log_wakeup); here: woken, not timed out.
    notifier = sink._notifier
    seen = notifier.version("exec-b")
    waiter = asyncio.create_task(notifier.wait("exec-b", seen, timeout=30.0))
    await asyncio.sleep(0.05)
    sink.emit("exec-b", LogLevel.INFO, "hello")
    assert await waiter
    async with db.read() as conn:
        records, _ = await logs.read(conn, "exec-b", LogLevel.INFO, 0, None)
    assert [r.content for r in records] == ["hello"]  # visible once the waiter wakes


async def test_flush_returns_once_everything_emitted_is_visible(
    db: Database, sink: LogSink
) -> None:
    for i in range(1000):
        sink.emit("exec-c", LogLevel.DEBUG, f"line {i}")
    await sink.flush()
    async with db.read() as conn:
        _, total = await logs.read(conn, "exec-c", LogLevel.DEBUG, 0, 0)
    assert total == 1000


async def test_flush_without_a_running_writer_writes_inline(db: Database) -> None:
    sink = LogSink(db, LogNotifier())
    sink.emit("exec-a", LogLevel.WARN, "queued before start")
    await sink.flush()
    assert await _indices(db, "exec-a") == [0]


async def test_a_failing_execution_does_not_hold_back_the_others(
    db: Database, sink: LogSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LogSink, "_RETRIES", (0.01,))
    sink.emit("no-such-execution", LogLevel.INFO, "orphan")  # violates the foreign key
    sink.emit("exec-a", LogLevel.INFO, "kept")
    await asyncio.wait_for(sink.flush(), 5.0)
    assert await _indices(db, "exec-a") == [0]
    assert await _indices(db, "no-such-execution") == []


async def test_two_replicas_writing_one_log_get_dense_indices_without_errors(
    database_url: str, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The replica that took a trigger and the one driving the execution both log it: no
    index is taken twice, none is skipped, and no error is logged for it."""
    other = Database(database_url)  # a second replica: its own connections
    sinks = [LogSink(db, LogNotifier()), LogSink(other, LogNotifier())]
    try:
        for sink in sinks:
            sink.start()
        for round_ in range(30):
            for number, sink in enumerate(sinks):
                sink.emit("exec-a", LogLevel.INFO, f"{number}:{round_}")
            await asyncio.sleep(0)
        for sink in sinks:
            await sink.stop()
    finally:
        await other.dispose()
    assert await _indices(db, "exec-a") == list(range(60))
    async with db.read() as conn:
        records, _ = await logs.read(conn, "exec-a", LogLevel.INFO, 0, None)
    for number in range(2):
        mine = [r.content for r in records if r.content.startswith(f"{number}:")]
        assert mine == [f"{number}:{i}" for i in range(30)]
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
