"""Wake-ups between replicas: PostgreSQL LISTEN/NOTIFY, or nothing for a single process.

A replica publishes what changed (log entries or status of executions, a new execution to
claim, a cancel for the replica driving an execution); every other replica hears it at once
and wakes its long-polls and its engine. Messages are small JSON objects on one channel.
After the listening connection was lost (notifications may have been missed meanwhile) the
handler gets ``{"t": "resync"}``: wake everything and read the database again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "hpcwaas"
Handler = Callable[[dict[str, Any]], None]
# NOTIFY payloads must stay under 8000 bytes: execution IDs go in chunks of this many.
_IDS_PER_MESSAGE = 150
_MAX_RECONNECT_DELAY = 5.0


class Broadcast:
    """No other replica to tell (SQLite): publishing does nothing."""

    async def start(self, handler: Handler) -> None:
        """Deliver other replicas' messages to ``handler`` from now on."""

    def changed(self, execution_id: str) -> None:
        """The execution's log entries or status changed."""

    def publish(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every other replica."""

    async def stop(self) -> None:
        """Send what is queued, stop listening."""


class PostgresBroadcast(Broadcast):
    """LISTEN/NOTIFY on a dedicated asyncpg connection, reconnected when lost."""

    def __init__(self, database_url: str) -> None:
        self._dsn = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._handler: Handler | None = None
        self._conn: Any = None
        self._changed: set[str] = set()
        self._outbox: list[dict[str, Any]] = []
        self._pending = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, handler: Handler) -> None:
        self._handler = handler
        await self._connect()
        self._task = asyncio.create_task(self._run(), name="hpcwaas-broadcast")

    def changed(self, execution_id: str) -> None:
        self._changed.add(execution_id)
        self._pending.set()

    def publish(self, message: dict[str, Any]) -> None:
        self._outbox.append(message)
        self._pending.set()

    async def stop(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send_queued(), 2.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2.0)
            self._conn = None

    async def _connect(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(self._dsn, timeout=10.0)
        self._lost.clear()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(CHANNEL, self._heard)
        self._conn = conn

    def _heard(self, conn: Any, pid: int, _channel: str, payload: str) -> None:
        if pid == conn.get_server_pid() or self._handler is None:
            return  # our own message
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("ignored a notification that is not JSON on channel %s", CHANNEL)
            return
        if isinstance(message, dict):
            self._handler(message)

    async def _run(self) -> None:
        delay = 0.2
        while True:
            if self._lost.is_set() or self._conn is None or self._conn.is_closed():
                try:
                    await self._connect()
                except Exception as exc:  # noqa: BLE001 - the database may be restarting
                    log.warning("listening for other replicas failed (%s); retrying", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_RECONNECT_DELAY)
                    continue
                delay = 0.2
                log.info("listening for other replicas again")
                if self._handler is not None:
                    self._handler({"t": "resync"})
            waits = [
                asyncio.ensure_future(self._pending.wait()),
                asyncio.ensure_future(self._lost.wait()),
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
            if self._lost.is_set():
                continue
            try:
                await self._send_queued()
            except Exception as exc:  # noqa: BLE001 - reconnected above; the others resync
                log.warning("telling other replicas failed (%s)", exc)
                self._lost.set()

    async def _send_queued(self) -> None:
        self._pending.clear()
        messages, self._outbox = self._outbox, []
        ids, self._changed = sorted(self._changed), set()
        for start in range(0, len(ids), _IDS_PER_MESSAGE):
            messages.append({"t": "changed", "ids": ids[start : start + _IDS_PER_MESSAGE]})
        for message in messages:
            await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps(message))


def open_broadcast(database_url: str) -> Broadcast:
    """LISTEN/NOTIFY on PostgreSQL; nothing on a single-process database."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresBroadcast(database_url)
    return Broadcast()
