"""This replica's leases on executions: claimed in batches, renewed on a heartbeat, released.

Every replica sharing the database claims executions through leases
(store/execution_leases.py), renews them on a heartbeat, and releases them when it stops, so
that another replica takes over at once; a replica that died loses them when they expire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from hpcwaas.api.states import ExecutionStatus
from hpcwaas.engine.runner import ExecutionRunner
from hpcwaas.store import execution_leases as leases
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord
from hpcwaas.store.notify import Broadcast

log = logging.getLogger(__name__)

# Executions claimed per round: a replica starting next to a big backlog takes it in bites.
CLAIM_BATCH = 200

# Starts driving a claimed execution (or ends one nothing of which can run on).
Take = Callable[[ExecutionRecord], Awaitable[None]]


class Leases:
    """Claims, renews and releases the leases of the executions one replica drives."""

    def __init__(
        self,
        *,
        db: Database,
        replica: str,
        lease_seconds: float,
        lock: asyncio.Lock,
        runners: Mapping[str, ExecutionRunner],
        tasks: Mapping[str, asyncio.Task[None]],
        take: Take,
        abandon_grace: float,
        broadcast: Broadcast,
    ) -> None:
        self._db = db  # one that fails at once: a lease must not be renewed late
        self._replica = replica
        self._lease_seconds = lease_seconds
        self._renewed_at = time.monotonic()
        self._lock = lock  # the engine's: claims, dispatches and cancels do not interleave
        self._runners = runners
        self._tasks = tasks  # the executions a runner here drives
        self._take = take
        self._abandon_grace = abandon_grace
        self._broadcast = broadcast

    async def claim_round(self) -> None:
        """Lease the unfinished executions nobody drives, and start driving them."""
        while True:
            async with self._lock:
                async with self._db.write() as conn:
                    claimed = await leases.claim(
                        conn,
                        self._replica,
                        now=datetime.now(UTC),
                        ttl=self._lease_seconds,
                        limit=CLAIM_BATCH,
                    )
                for record in claimed:
                    if record.id in self._tasks:
                        continue  # driven here already; its lapsed lease was just renewed
                    try:
                        await self._take(record)
                    except Exception:
                        log.exception("execution %s could not be dispatched", record.id)
            if len(claimed) < CLAIM_BATCH:
                return

    async def heartbeat(self) -> None:
        """Renew the leases three times per lease period, until cancelled."""
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            await self.renew()

    async def renew(self) -> None:
        """Extend this replica's leases; give up the executions another replica took over."""
        driving = list(self._tasks)
        try:
            async with self._db.write() as conn:
                held = await leases.renew(
                    conn,
                    self._replica,
                    driving,
                    now=datetime.now(UTC),
                    ttl=self._lease_seconds,
                )
        except Exception as exc:  # noqa: BLE001 - the database may be away for a while
            # The executions go on here: what they do waits to be recorded (RunContext.write).
            # Whether another replica took one over meanwhile is known only once the database
            # answers again; then the renewal below gives up exactly those.
            silent = time.monotonic() - self._renewed_at
            log.warning(
                "renewing leases failed (%s) for %.0f s; the %d execution(s) driven here go on",
                exc,
                silent,
                len(driving),
            )
            return
        self._renewed_at = time.monotonic()
        kept = {lease.execution_id for lease in held}
        for execution_id in driving:
            if execution_id not in kept:
                self._abandon(execution_id, "another replica took it over")
        for lease in held:
            runner = self._runners.get(lease.execution_id)
            if runner is not None and lease.status is ExecutionStatus.CANCELLING:
                if not runner.cancelling:
                    runner.request_cancel("")  # asked on another replica; its message was missed

    async def release(self) -> None:
        """Give every execution this replica held to the others, and wake them to claim it."""
        try:
            async with self._db.write() as conn:
                released = await leases.release(conn, self._replica)
        except Exception:
            log.exception("could not release this replica's leases; they expire on their own")
            return
        if released:
            log.info("released %d execution(s) to the other replicas", released)
            self._broadcast.publish({"t": "wake"})

    def _abandon(self, execution_id: str, why: str) -> None:
        runner = self._runners.get(execution_id)
        if runner is not None and not runner.abandoned:
            log.warning("execution %s: stopped driving it: %s", execution_id, why)
            runner.request_abandon(self._abandon_grace)
