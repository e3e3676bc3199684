"""Log entries on their way to the database, and the wake-ups of those waiting for them.

``LogSink`` is the one writer of log entries in this process: producers ``emit`` without
waiting, a background task writes what has accumulated in one transaction per batch, so
indices stay dense per execution and a busy step costs few transactions. ``LogNotifier``
tells long-polls (logs, status) that an execution changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from hpcwaas.api.states import LogLevel
from hpcwaas.store import logs as store_logs
from hpcwaas.store.database import Database, is_unavailable
from hpcwaas.store.logs import Checkpoint, LogRecord

log = logging.getLogger(__name__)


# The channel woken by a change of any execution (the executions list's event stream).
ANY_EXECUTION = "*"


class LogNotifier:
    """Per-execution change counters, and waiters on them.

    A waiter reads ``version()`` BEFORE reading the database, then ``wait()``s with it: a change
    that lands between the two moves the version, so the wait returns at once (no lost wake-up).
    Versions come from one process-wide counter, so a forgotten execution never goes back to a
    version a waiter may hold.
    """

    def __init__(self) -> None:
        self._counter = 0
        self._floor = 0  # the version of every execution without its own counter
        self._versions: dict[str, int] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        # Told of every change made here, to tell the other replicas (store/notify.py).
        self.on_change: Callable[[str], None] | None = None

    def version(self, execution_id: str) -> int:
        """The execution's current version; it moves on every ``notify``."""
        return self._versions.get(execution_id, self._floor)

    def notify(self, execution_id: str) -> None:
        """Record a change of the execution made here, wake its waiters, tell the replicas."""
        self.wake(execution_id)
        if self.on_change is not None:
            self.on_change(execution_id)

    def wake_all(self) -> None:
        """Wake every waiter (changes may have been missed): they read the database again."""
        for execution_id in list(self._waiters):
            self.wake(execution_id)

    def wake(self, execution_id: str) -> None:
        """Record a change of the execution (made here or elsewhere), wake its waiters and
        those of ``ANY_EXECUTION``."""
        self._counter += 1
        for channel in {execution_id, ANY_EXECUTION}:
            self._versions[channel] = self._counter
            for waiter in self._waiters.pop(channel, set()):
                if not waiter.done():
                    waiter.set_result(None)

    def forget(self, execution_id: str) -> None:
        """Drop the counter of a finished execution, to bound memory."""
        if execution_id in self._versions:
            self._floor = max(self._floor, self._versions.pop(execution_id))

    def waiting(self, execution_id: str) -> int:
        """How many waiters the execution has (for tests and metrics)."""
        return len(self._waiters.get(execution_id, ()))

    async def wait(self, execution_id: str, seen_version: int, timeout: float) -> bool:
        """Return True once the version differs from ``seen_version``; False after ``timeout``."""
        if self.version(execution_id) != seen_version:
            return True
        if timeout <= 0:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(execution_id, set()).add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
            return True
        except TimeoutError:
            return self.version(execution_id) != seen_version
        finally:
            waiters = self._waiters.get(execution_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[execution_id]


@dataclass
class _Entries:
    """One execution's part of a batch."""

    records: list[LogRecord]
    checkpoints: list[Checkpoint]

    def __len__(self) -> int:
        return len(self.records)


class LogSink:
    """The single writer of log entries: ``emit`` queues, a background task writes in batches."""

    # Past this many queued entries, producers that honour ``room()`` wait for the writer.
    HIGH_WATER = 20_000
    MAX_BATCH = 5_000
    _RETRIES = (0.1, 0.5, 2.0)
    _MAX_OUTAGE_DELAY = 5.0

    def __init__(self, db: Database, notifier: LogNotifier) -> None:
        self._db = db
        self._notifier = notifier
        self._queue: deque[tuple[str, LogRecord, Checkpoint | None]] = deque()
        self._emitted = 0  # entries emitted so far
        self._done = 0  # entries written (or given up on) so far, in emit order
        self._flushers: list[tuple[int, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def emit(
        self,
        execution_id: str,
        level: LogLevel,
        content: str,
        step: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Queue an entry stamped now; it is written soon after, in emit order.

        ``checkpoint``: how far a job's output file was read with this line, saved in the
        same transaction as the entry.
        """
        record = LogRecord(level=level, timestamp=datetime.now(UTC), content=content, step=step)
        self._queue.append((execution_id, record, checkpoint))
        self._emitted += 1
        self._wakeup.set()
        if len(self._queue) >= self.HIGH_WATER:
            self._room.clear()

    async def room(self) -> None:
        """Wait while the queue is over its high-water mark (back-pressure for chatty steps)."""
        await self._room.wait()

    async def flush(self) -> None:
        """Return once every entry emitted before this call is in the database."""
        target = self._emitted
        if self._done >= target:
            return
        if self._task is None or self._task.done():
            while self._done < target:
                if not self._queue:
                    async with self._write_lock:  # someone else is writing the last batch
                        pass
                    if not self._queue:
                        break
                await self._write_batch()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushers.append((target, waiter))
        await waiter

    def start(self) -> None:
        """Start the background writer."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="hpcwaas-log-sink")

    async def stop(self) -> None:
        """Write everything queued, then stop the background writer."""
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()  # anything emitted while stopping
        self._release_flushers()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                await self._write_batch()

    async def _write_batch(self) -> None:
        async with self._write_lock:
            count = min(len(self._queue), self.MAX_BATCH)
            if not count:
                return
            batch: dict[str, _Entries] = {}
            for execution_id, record, checkpoint in itertools.islice(self._queue, count):
                entries = batch.setdefault(execution_id, _Entries([], []))
                entries.records.append(record)
                if checkpoint is not None:
                    entries.checkpoints.append(checkpoint)
            await self._write_with_retries(batch)
            # Removed only once written: a writer cancelled mid-batch leaves them for stop().
            for _ in range(count):
                self._queue.popleft()
            self._done += count
        if len(self._queue) < self.HIGH_WATER:
            self._room.set()
        for execution_id in batch:
            self._notifier.notify(execution_id)
        self._release_flushers()

    async def _write_with_retries(self, batch: dict[str, _Entries]) -> None:
        retries = iter(self._RETRIES)
        outage = 0.0
        while True:
            try:
                await self._write(batch)
                if outage:
                    log.info("log entries written again after a database outage")
                return
            except Exception as exc:
                if is_unavailable(exc):
                    # Nothing is dropped while the database is away: the queue holds the
                    # entries (and holds chatty steps back at its high-water mark).
                    if not outage:
                        log.warning("the database is unreachable: log entries wait for it")
                    outage = min(max(outage * 2, 0.2), self._MAX_OUTAGE_DELAY)
                    await asyncio.sleep(outage)
                    continue
                log.exception("writing %d log entries failed", sum(map(len, batch.values())))
                delay = next(retries, None)
                if delay is None:
                    break
                await asyncio.sleep(delay)
        # Still failing: write execution by execution, so one bad execution cannot hold
        # back the others; entries that still fail are dropped (and said so in the server log).
        for execution_id, entries in batch.items():
            try:
                await self._write({execution_id: entries})
            except Exception:  # noqa: BLE001 - reported, and the writer must keep going
                log.error("dropped %d log entries of execution %s", len(entries), execution_id)

    async def _write(self, batch: dict[str, _Entries]) -> None:
        async with self._db.write() as conn:
            for execution_id, entries in batch.items():
                await store_logs.append(conn, execution_id, entries.records)
                if entries.checkpoints:
                    await store_logs.save_checkpoints(conn, execution_id, entries.checkpoints)

    def _release_flushers(self) -> None:
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, waiter in self._flushers:
            if target <= self._done:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((target, waiter))
        self._flushers = still
