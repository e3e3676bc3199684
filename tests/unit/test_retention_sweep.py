"""Retention: settings, which executions are due, the data remover and one sweep (on SQLite,
and on PostgreSQL where the suite has it)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hpcwaas.api.states import ExecutionStatus, LogLevel
from hpcwaas.engine.data_removal import DataRemover
from hpcwaas.engine.retention import (
    LEASE_NAME,
    RetentionSweeper,
    SweepBusy,
    cutoff,
    is_due,
)
from hpcwaas.settings import ConfigError, Settings, load_settings
from hpcwaas.store import audit as audit_store
from hpcwaas.store import data_removal, leases
from hpcwaas.store import executions as execution_store
from hpcwaas.store import logs as log_store
from hpcwaas.store import outputs as output_store
from hpcwaas.store.data_removal import DataKind
from hpcwaas.store.database import Database
from hpcwaas.store.tables import execution_outputs, log_entries

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOST_KEY = (
    "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
)


# -- settings -----------------------------------------------------------------------------------


def _config(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_retention_defaults_keep_work_dirs_a_week_logs_90_days_outputs_30_days() -> None:
    retention = Settings().retention
    assert retention.work_dirs == retention.cluster_work_dirs == 7 * 86400
    assert retention.logs == 90 * 86400
    assert retention.outputs == 30 * 86400
    assert retention.sweep_interval_seconds == 3600


def test_retention_durations_accept_seconds_unit_strings_and_null(tmp_path: Path) -> None:
    settings = _config(
        tmp_path,
        "retention:\n  work_dirs: 12h\n  cluster_work_dirs: 1d12h\n  logs: null\n  outputs: 90\n",
    )
    retention = settings.retention
    assert retention.work_dirs == 12 * 3600
    assert retention.cluster_work_dirs == 36 * 3600
    assert retention.logs is None
    assert retention.outputs == 90


def test_a_retention_that_is_not_a_duration_names_the_key_and_the_forms_accepted(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, "retention:\n  logs: a while\n")
    message = str(caught.value)
    assert "retention.logs" in message
    assert "7d" in message and "null to keep forever" in message
    with pytest.raises(ConfigError, match=r"retention\.outputs.*greater than or equal to 0"):
        _config(tmp_path, "retention:\n  outputs: -5\n")
    with pytest.raises(ConfigError, match=r"retention\.keep_forever"):
        _config(tmp_path, "retention:\n  keep_forever: true\n")


# -- due computation ------------------------------------------------------------------------------


def _record(status: ExecutionStatus, ended: datetime | None) -> execution_store.ExecutionRecord:
    return execution_store.ExecutionRecord(
        id="e",
        owner="alice",
        workflow_id="demo@local@hello",
        application="demo",
        environment="local",
        workflow="hello",
        inputs={},
        status=status,
        error=None,
        outputs=None,
        definition_digest="0" * 64,
        work_dir=None,
        created_at=NOW - 30 * DAY,
        started_at=None,
        ended_at=ended,
        cancel_requested=False,
        cluster_login=None,
        key_id=None,
    )


def test_an_execution_is_due_once_it_ended_longer_ago_than_the_retention() -> None:
    week = 7 * 86400.0
    assert cutoff(NOW, week) == NOW - 7 * DAY
    assert cutoff(NOW, None) is None
    assert is_due(_record(ExecutionStatus.SUCCEEDED, NOW - 8 * DAY), week, NOW)
    assert is_due(_record(ExecutionStatus.FAILED, NOW - 8 * DAY), week, NOW)
    assert not is_due(_record(ExecutionStatus.SUCCEEDED, NOW - 6 * DAY), week, NOW)
    assert not is_due(_record(ExecutionStatus.SUCCEEDED, NOW - 8 * DAY), None, NOW)
    # never the data of an execution that is still going, however old
    assert not is_due(_record(ExecutionStatus.RUNNING, None), week, NOW)
    assert not is_due(_record(ExecutionStatus.CANCELLING, NOW - 8 * DAY), week, NOW)


# -- with a database ------------------------------------------------------------------------------


def _settings(tmp_path: Path, **retention: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        retention=retention,
        environments={
            "local": {"kind": "local"},
            "hpc": {"kind": "slurm", "host": "127.0.0.1", "port": 1, "host_keys": [HOST_KEY]},
        },
    )


async def _execution(
    db: Database,
    settings: Settings,
    execution_id: str,
    *,
    ended: datetime | None,
    status: ExecutionStatus = ExecutionStatus.SUCCEEDED,
    environment: str = "local",
    login: str | None = None,
    places: dict[str, dict[str, str | None]] | None = None,
) -> None:
    """An execution with a work dir, two log entries and a stored output file."""
    async with db.write() as conn:
        await execution_store.create_execution(
            conn,
            execution_id=execution_id,
            owner="alice",
            workflow_id=f"demo@{environment}@hello",
            application="demo",
            environment=environment,
            workflow="hello",
            inputs={},
            definition_digest="0" * 64,
            step_names=["greet"],
            cluster_login=login,
            key_id="key-1" if login else None,
            places=places,
        )
        await execution_store.transition(
            conn, execution_id, ExecutionStatus.RUNNING, expected={ExecutionStatus.PENDING}
        )
        if status is not ExecutionStatus.RUNNING:
            await execution_store.transition(
                conn, execution_id, status, expected={ExecutionStatus.RUNNING}, ended_at=ended
            )
        await log_store.append(
            conn,
            execution_id,
            [
                log_store.LogRecord(LogLevel.INFO, NOW - 9 * DAY, "hello", "greet"),
                log_store.LogRecord(LogLevel.INFO, NOW - 9 * DAY, "done", None),
            ],
        )
        await output_store.record_output(
            conn,
            output_store.StoredOutput(
                execution_id=execution_id,
                name="report",
                size=5,
                sha256="0" * 64,
                media_type="text/plain",
                metadata={},
                path=f"{execution_id}/report/report.txt",
                created_at=NOW - 9 * DAY,
            ),
        )
    work = settings.work_dir / execution_id
    work.mkdir(parents=True)
    (work / "out.txt").write_text("result")
    stored = settings.results_root / execution_id / "report"
    stored.mkdir(parents=True)
    (stored / "report.txt").write_text("hello")


async def _count(db: Database, table: Any, execution_id: str) -> int:
    async with db.read() as conn:
        query = select(func.count()).select_from(table).where(table.c.execution_id == execution_id)
        return int((await conn.execute(query)).scalar_one())


async def _get(db: Database, execution_id: str) -> execution_store.ExecutionRecord:
    async with db.read() as conn:
        record = await execution_store.get_execution(conn, execution_id)
    assert record is not None
    return record


async def test_due_lists_finished_executions_past_the_cutoff_oldest_first(
    db: Database, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    await _execution(db, settings, "old", ended=NOW - 10 * DAY)
    await _execution(db, settings, "older", ended=NOW - 20 * DAY, status=ExecutionStatus.FAILED)
    await _execution(db, settings, "recent", ended=NOW - 1 * DAY)
    await _execution(db, settings, "running", ended=None, status=ExecutionStatus.RUNNING)
    await _execution(db, settings, "on-hpc", ended=NOW - 10 * DAY, environment="hpc")
    async with db.read() as conn:
        due = await data_removal.due(conn, DataKind.LOGS, NOW - 7 * DAY, limit=10)
        assert [r.id for r in due] == ["older", "old", "on-hpc"]
        local = await data_removal.due(
            conn, DataKind.WORK_DIR, NOW - 7 * DAY, exclude_environments=["hpc"], limit=10
        )
        assert [r.id for r in local] == ["older", "old"]
        hpc = await data_removal.due(
            conn, DataKind.CLUSTER_WORK_DIR, NOW - 7 * DAY, environments=["hpc"], limit=10
        )
        assert [r.id for r in hpc] == ["on-hpc"]
        assert [r.id for r in await data_removal.due(conn, DataKind.LOGS, NOW, limit=1)] == [
            "older"
        ]


async def test_an_execution_with_steps_on_a_cluster_too_is_due_for_both_directories(
    db: Database, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    # on local, one of its steps on hpc: a directory here and one on the cluster
    places: dict[str, dict[str, str | None]] = {"hpc": {"login": "u1", "key_id": "key-1"}}
    await _execution(db, settings, "both", ended=NOW - 10 * DAY, places=places)
    await _execution(db, settings, "local-only", ended=NOW - 10 * DAY)
    async with db.read() as conn:
        on_cluster = await data_removal.due(
            conn, DataKind.CLUSTER_WORK_DIR, NOW - 7 * DAY, environments=["hpc"], limit=10
        )
        here = await data_removal.due(
            conn, DataKind.WORK_DIR, NOW - 7 * DAY, exclude_environments=["hpc"], limit=10
        )
    assert [r.id for r in on_cluster] == ["both"]
    assert sorted(r.id for r in here) == ["both", "local-only"]
    remover = DataRemover(db, settings, None)
    assert remover.applicable(await _get(db, "both")) == [
        DataKind.WORK_DIR,
        DataKind.CLUSTER_WORK_DIR,
        DataKind.LOGS,
        DataKind.OUTPUTS,
    ]
    assert DataKind.CLUSTER_WORK_DIR not in remover.applicable(await _get(db, "local-only"))


async def test_a_sweep_removes_due_data_keeps_the_execution_and_records_what_went(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, work_dirs="7d", logs="7d", outputs="7d")
    await _execution(db, settings, "old", ended=NOW - 10 * DAY)
    await _execution(db, settings, "recent", ended=NOW - 1 * DAY)
    sweeper = RetentionSweeper(db, settings, DataRemover(db, settings, None), owner="replica-a")
    with caplog.at_level(logging.INFO, logger="hpcwaas.engine.retention"):
        counts = await sweeper.sweep(now=NOW)

    assert counts.removed[DataKind.WORK_DIR] == 1
    assert counts.removed[DataKind.LOGS] == 1
    assert counts.removed[DataKind.OUTPUTS] == 1
    assert (counts.log_entries, counts.output_files, counts.left) == (2, 1, 0)
    assert not (settings.work_dir / "old").exists()
    assert not (settings.results_root / "old").exists()
    assert await _count(db, log_entries, "old") == 0
    assert await _count(db, execution_outputs, "old") == 0
    old = await _get(db, "old")
    assert old.status is ExecutionStatus.SUCCEEDED  # the execution itself stays
    assert old.logs_removed_at is not None and old.outputs_removed_at is not None
    assert old.data_removed_by == dict.fromkeys(("work_dir", "logs", "outputs"), "retention")
    # the recent one is untouched
    assert (settings.work_dir / "recent" / "out.txt").exists()
    assert await _count(db, log_entries, "recent") == 2
    # one INFO line with the counts, one audit event, and the lease handed back
    [line] = [r.getMessage() for r in caplog.records if "retention sweep" in r.getMessage()]
    assert "logs of 1 (2 entries)" in line and "outputs of 1 (1 files)" in line
    async with db.read() as conn:
        events, _ = await audit_store.query(
            conn, audit_store.AuditFilters(action="retention.sweep"), audit_store.AuditPage()
        )
        assert await leases.holder(conn, LEASE_NAME) is None
    [event] = events
    assert event.actor == "retention"
    assert event.details == {
        "replica": "replica-a",
        "work_dirs": 1,
        "cluster_work_dirs": 0,
        "logs": 1,
        "outputs": 1,
        "log_entries": 2,
        "output_files": 1,
        "left": 0,
    }
    # a second sweep finds nothing left to do
    again = await sweeper.sweep(now=NOW)
    assert sum(again.removed.values()) == 0


async def test_a_kind_kept_forever_is_never_removed(db: Database, tmp_path: Path) -> None:
    settings = _settings(tmp_path, logs=None, outputs=None, work_dirs="1d")
    await _execution(db, settings, "old", ended=NOW - 400 * DAY)
    await RetentionSweeper(db, settings, DataRemover(db, settings, None)).sweep(now=NOW)
    assert await _count(db, log_entries, "old") == 2
    assert (settings.results_root / "old" / "report" / "report.txt").exists()
    assert not (settings.work_dir / "old").exists()


async def test_a_sweep_is_refused_while_another_replica_holds_the_lease(
    db: Database, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, logs="1d")
    await _execution(db, settings, "old", ended=NOW - 10 * DAY)
    async with db.write() as conn:
        assert await leases.acquire(conn, LEASE_NAME, "replica-b", 600)
    sweeper = RetentionSweeper(db, settings, DataRemover(db, settings, None), owner="replica-a")
    with pytest.raises(SweepBusy, match="replica-b"):
        await sweeper.sweep(now=NOW)
    assert await _count(db, log_entries, "old") == 2


async def test_an_unreachable_cluster_leaves_its_directory_for_later_and_blocks_nothing_else(
    db: Database, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    await _execution(db, settings, "hpc-old", ended=NOW - 10 * DAY, environment="hpc", login="al")
    await _execution(db, settings, "local-old", ended=NOW - 10 * DAY)
    counts = await RetentionSweeper(db, settings, DataRemover(db, settings, None)).sweep(
        now=NOW + 200 * DAY
    )
    assert counts.left == 1
    assert counts.removed[DataKind.CLUSTER_WORK_DIR] == 0
    assert counts.removed[DataKind.WORK_DIR] == 1
    assert counts.removed[DataKind.LOGS] == 2
    hpc = await _get(db, "hpc-old")
    assert hpc.cluster_work_dir_removed_at is None  # tried again by the next sweep
    assert hpc.logs_removed_at is not None


async def test_removal_never_follows_links_out_of_the_work_dir(
    db: Database, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep me")
    await _execution(db, settings, "linked", ended=NOW - 10 * DAY)
    await _execution(db, settings, "is-a-link", ended=NOW - 10 * DAY)
    (settings.work_dir / "linked" / "escape").symlink_to(outside)
    (settings.work_dir / "linked" / "file-link").symlink_to(outside / "keep.txt")
    replaced = settings.work_dir / "is-a-link"
    (replaced / "out.txt").unlink()
    replaced.rmdir()
    replaced.symlink_to(outside)

    remover = DataRemover(db, settings, None)
    for execution_id in ("linked", "is-a-link"):
        outcome = await remover.remove(
            await _get(db, execution_id), [DataKind.WORK_DIR], by="alice"
        )
        assert outcome.removed == [DataKind.WORK_DIR], outcome.failed
    assert not (settings.work_dir / "linked").exists()
    assert not replaced.is_symlink() and not replaced.exists()
    assert (outside / "keep.txt").read_text() == "keep me"


async def test_the_data_of_an_unfinished_execution_is_refused(db: Database, tmp_path: Path) -> None:
    from hpcwaas.engine.data_removal import RemovalRefused

    settings = _settings(tmp_path)
    await _execution(db, settings, "running", ended=None, status=ExecutionStatus.RUNNING)
    with pytest.raises(RemovalRefused, match="RUNNING"):
        await DataRemover(db, settings, None).remove(
            await _get(db, "running"), list(DataKind), by="alice"
        )
    assert (settings.work_dir / "running").exists()


async def test_a_sweep_that_loses_its_lease_stops_and_leaves_the_rest_to_the_next(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hpcwaas.engine import retention

    settings = _settings(tmp_path, logs="1d", work_dirs=None, outputs=None)
    await _execution(db, settings, "first", ended=NOW - 10 * DAY)
    await _execution(db, settings, "second", ended=NOW - 9 * DAY)
    monkeypatch.setattr(retention, "LEASE_SECONDS", 0.3)

    class SlowRemover(DataRemover):
        async def remove(self, *args: Any, **kwargs: Any) -> Any:
            outcome = await super().remove(*args, **kwargs)
            # meanwhile the lease expired and another replica took it over
            async with db.write() as conn:
                await leases.release(conn, LEASE_NAME, "replica-a")
                assert await leases.acquire(conn, LEASE_NAME, "replica-b", 600)
            await asyncio.sleep(0.15)
            return outcome

    sweeper = RetentionSweeper(db, settings, SlowRemover(db, settings, None), owner="replica-a")
    with caplog.at_level(logging.WARNING, logger="hpcwaas.engine.retention"):
        counts = await sweeper.sweep(now=NOW)
    assert counts.removed[DataKind.LOGS] == 1
    assert await _count(db, log_entries, "first") == 0
    assert await _count(db, log_entries, "second") == 2
    assert "stopped early" in caplog.text and "lease ran out" in caplog.text
    # the lease stays with the replica that took it over
    async with db.read() as conn:
        holder = await leases.holder(conn, LEASE_NAME)
    assert holder is not None and holder.owner == "replica-b"
