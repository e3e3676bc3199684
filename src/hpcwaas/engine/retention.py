"""The retention sweep: removes finished executions' data once it is older than configured.

Every ``retention.sweep_interval_seconds`` each replica tries to take the named lease
``retention``; the one that gets it sweeps, the others skip that round. A sweep handles each
kind (``retention.work_dirs``, ``cluster_work_dirs``, ``logs``, ``outputs``) in batches of
``retention.batch_size`` executions, oldest first, renewing its lease as it goes. What it
could not remove (a cluster unreachable, a key store down) stays for the next sweep and never
holds up the rest. Each sweep logs one INFO line and writes one audit event with its counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hpcwaas.engine.data_removal import DataRemover, RemovalOutcome
from hpcwaas.replica import replica_id
from hpcwaas.settings import RetentionConfig, Settings
from hpcwaas.store import audit as audit_store
from hpcwaas.store import data_removal as store
from hpcwaas.store import leases
from hpcwaas.store.data_removal import RETENTION_ACTOR, DataKind
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord

log = logging.getLogger(__name__)

LEASE_NAME = "retention"
# How long a sweep may go without renewing its lease before another replica may take over.
LEASE_SECONDS = 600.0
# Failures one sweep remembers per kind (to ask for others instead); past it, the kind waits.
MAX_SKIPPED = 1000


@dataclass
class SweepCounts:
    """What one sweep removed: executions per kind, plus entries and files."""

    removed: dict[DataKind, int] = field(default_factory=lambda: dict.fromkeys(DataKind, 0))
    log_entries: int = 0
    output_files: int = 0
    # kinds of executions left for the next sweep because they failed now
    left: int = 0

    def add(self, outcome: RemovalOutcome) -> None:
        for kind in outcome.removed:
            self.removed[kind] += 1
        self.log_entries += outcome.log_entries
        self.output_files += outcome.output_files
        self.left += len(outcome.failed)

    def summary(self) -> str:
        """One line: what was removed, what is left."""
        r = self.removed
        return (
            f"work dirs of {r[DataKind.WORK_DIR]} executions, "
            f"cluster work dirs of {r[DataKind.CLUSTER_WORK_DIR]}, "
            f"logs of {r[DataKind.LOGS]} ({self.log_entries} entries), "
            f"outputs of {r[DataKind.OUTPUTS]} ({self.output_files} files); "
            f"{self.left} left for the next sweep"
        )

    def as_details(self) -> dict[str, int]:
        """The counts as plain values (for the audit log and JSON output)."""
        details = {_PLURAL[kind]: count for kind, count in self.removed.items()}
        details.update(log_entries=self.log_entries, output_files=self.output_files, left=self.left)
        return details


# The settings' names of the kinds, used as keys of the counts.
_PLURAL = {
    DataKind.WORK_DIR: "work_dirs",
    DataKind.CLUSTER_WORK_DIR: "cluster_work_dirs",
    DataKind.LOGS: "logs",
    DataKind.OUTPUTS: "outputs",
}


class SweepBusy(Exception):
    """Another replica (or command) is sweeping; the message says which, until when."""


class LeaseLost(Exception):
    """The sweep could not renew its lease in time: it stops, another replica may go on."""


def retention_of(config: RetentionConfig, kind: DataKind) -> float | None:
    """The configured retention of ``kind`` in seconds, None to keep forever."""
    return {
        DataKind.WORK_DIR: config.work_dirs,
        DataKind.CLUSTER_WORK_DIR: config.cluster_work_dirs,
        DataKind.LOGS: config.logs,
        DataKind.OUTPUTS: config.outputs,
    }[kind]


def cutoff(now: datetime, retention_seconds: float | None) -> datetime | None:
    """Executions that ended before this moment are due; None when kept forever."""
    if retention_seconds is None:
        return None
    return now - timedelta(seconds=retention_seconds)


def is_due(record: ExecutionRecord, retention_seconds: float | None, now: datetime) -> bool:
    """Whether ``kind`` of a finished execution with this retention is due for removal."""
    limit = cutoff(now, retention_seconds)
    return (
        limit is not None
        and record.status.terminal
        and record.ended_at is not None
        and record.ended_at < limit
    )


class RetentionSweeper:
    """Runs a sweep every ``sweep_interval_seconds`` on whichever replica holds the lease."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        remover: DataRemover,
        *,
        owner: str | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._config = settings.retention
        self._remover = remover
        self.owner = owner or replica_id()
        self._task: asyncio.Task[None] | None = None
        self._renewed_at = 0.0  # monotonic time of the last taking or renewal of the lease

    def start(self) -> None:
        """Sweep now and then every interval, in a background task."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="hpcwaas-retention")

    async def stop(self) -> None:
        """Stop sweeping (a sweep in progress stops between two removals)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except SweepBusy as busy:
                log.debug("retention sweep skipped: %s", busy)
            except Exception:
                log.exception("retention sweep failed; trying again in the next one")
            await asyncio.sleep(self._config.sweep_interval_seconds)

    async def sweep(self, now: datetime | None = None) -> SweepCounts:
        """One sweep under the lease; SweepBusy if another holds it."""
        async with self._db.write() as conn:
            taken = await leases.acquire(conn, LEASE_NAME, self.owner, LEASE_SECONDS)
            current = None if taken else await leases.holder(conn, LEASE_NAME)
        if not taken:
            raise SweepBusy(
                f"replica {current.owner if current else '?'} is sweeping "
                f"(its lease runs until {current.expires_at.isoformat() if current else '?'})"
            )
        counts = SweepCounts()
        self._renewed_at = time.monotonic()
        try:
            await self._sweep(counts, now or datetime.now(UTC))
        except LeaseLost as lost:
            log.warning("retention sweep stopped early: %s", lost)
        finally:
            # Cancelled or not, hand the lease over; shielded so a stopping server still does.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release())
        log.info("retention sweep removed %s", counts.summary())
        await self._audit(counts)
        return counts

    async def _release(self) -> None:
        async with self._db.write() as conn:
            await leases.release(conn, LEASE_NAME, self.owner)

    async def _keep_lease(self) -> None:
        """Renew the lease once a third of it has passed (a write per removal would be waste)."""
        if time.monotonic() - self._renewed_at < LEASE_SECONDS / 3:
            return
        async with self._db.write() as conn:
            if not await leases.renew(conn, LEASE_NAME, self.owner, LEASE_SECONDS):
                raise LeaseLost(
                    f"its lease ran out (no renewal for {LEASE_SECONDS:g} s); the rest waits "
                    "for the next sweep"
                )
        self._renewed_at = time.monotonic()

    async def _sweep(self, counts: SweepCounts, now: datetime) -> None:
        clusters = self._remover.slurm_environments()
        for kind in DataKind:
            limit = cutoff(now, retention_of(self._config, kind))
            if limit is None:
                continue
            if kind is DataKind.CLUSTER_WORK_DIR:
                if clusters:
                    await self._sweep_kind(kind, limit, counts, environments=clusters)
            elif kind is DataKind.WORK_DIR:
                await self._sweep_kind(kind, limit, counts, exclude=clusters)
            else:
                await self._sweep_kind(kind, limit, counts)

    async def _sweep_kind(
        self,
        kind: DataKind,
        limit: datetime,
        counts: SweepCounts,
        *,
        environments: list[str] | None = None,
        exclude: list[str] | None = None,
    ) -> None:
        unreachable: set[str] = set()
        skip: set[str] = set()  # failed in this sweep: not asked again until the next one
        while True:
            async with self._db.read() as conn:
                batch = await store.due(
                    conn,
                    kind,
                    limit,
                    environments=environments,
                    # a cluster found unreachable is not tried again in this sweep
                    exclude_environments=[*(exclude or ()), *unreachable],
                    exclude_ids=skip,
                    limit=self._config.batch_size,
                )
            if not batch:
                return
            for record in batch:
                if unreachable & {record.environment, *(record.places or {})}:
                    skip.add(record.id)
                    counts.left += 1
                    continue
                try:
                    outcome = await self._remover.remove(record, [kind], by=RETENTION_ACTOR)
                except Exception:
                    log.exception("retention: execution %s: removing %s failed", record.id, kind)
                    skip.add(record.id)
                    counts.left += 1
                    continue
                counts.add(outcome)
                if outcome.failed:
                    skip.add(record.id)
                    log.warning(
                        "retention: execution %s: its %s stays for the next sweep: %s",
                        record.id,
                        kind.value,
                        outcome.failed[kind],
                    )
                if outcome.unreachable is not None:
                    unreachable.add(outcome.unreachable)
                await self._keep_lease()
            if len(batch) < self._config.batch_size or len(skip) >= MAX_SKIPPED:
                return

    async def _audit(self, counts: SweepCounts) -> None:
        if not any(counts.removed.values()) and not counts.left:
            return  # nothing happened: no event every hour for nothing
        try:
            async with self._db.write() as conn:
                await audit_store.record(
                    conn,
                    actor=RETENTION_ACTOR,
                    action=audit_store.AuditAction.RETENTION_SWEEP,
                    target=None,
                    source=audit_store.ENGINE_SOURCE,
                    outcome=audit_store.Outcome.FAILURE
                    if counts.left
                    else audit_store.Outcome.SUCCESS,
                    details={"replica": self.owner, **counts.as_details()},
                )
        except Exception:
            log.exception("retention: the sweep's audit event could not be written")
