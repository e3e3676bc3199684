"""Reloading the catalog of a running server: on a change of its files, on SIGHUP, on request.

The watcher polls the stat of the catalog directories every ``catalog_watch_seconds`` (no
inotify: it works the same on every file system, network mounts included). A reload keeps
the definitions that unfinished executions were triggered with (``LiveCatalog``).
The server writes its process ID to ``<data_dir>/hpcwaas-api.pid`` so that
``hpcwaas-api catalog reload`` can send it SIGHUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from hpcwaas.api.states import ExecutionStatus
from hpcwaas.catalog.catalog import Catalog
from hpcwaas.catalog.live import DefinitionKey, Fingerprint, LiveCatalog, catalog_fingerprint
from hpcwaas.store import executions as execution_store
from hpcwaas.store.database import Database

log = logging.getLogger(__name__)

PID_FILE_NAME = "hpcwaas-api.pid"
_UNFINISHED = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING, ExecutionStatus.CANCELLING)


class CatalogReloader:
    """Serializes reloads of one server's catalog and runs the directory watcher."""

    def __init__(self, live: LiveCatalog, db: Database, watch_seconds: float) -> None:
        self._live = live
        self._db = db
        self._watch_seconds = watch_seconds
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Catalog | None]] = set()

    async def reload(self, reason: str) -> Catalog | None:
        """Reload now; None (and the error logged) if the files could not be read at all."""
        async with self._lock:
            log.info("catalog: reloading (%s)", reason)
            try:
                in_use = await self._in_use()
                # File reading and parsing off the event loop: requests go on meanwhile.
                return await asyncio.to_thread(self._live.reload, in_use)
            except Exception:
                log.exception("catalog: reload failed; the previous catalog is still served")
                return None

    def reload_soon(self, reason: str) -> None:
        """Schedule a reload (from a signal handler)."""
        task = asyncio.get_running_loop().create_task(self.reload(reason))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def start(self) -> None:
        """Start watching the directories (unless ``catalog_watch_seconds`` is 0)."""
        if self._watch_seconds > 0 and self._task is None:
            self._task = asyncio.create_task(self._watch(), name="hpcwaas-catalog-watch")

    async def stop(self) -> None:
        """Stop watching; wait for a reload under way."""
        tasks = [t for t in (self._task, *self._pending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    async def _watch(self) -> None:
        settling: Fingerprint | None = None
        while True:
            await asyncio.sleep(self._watch_seconds)
            try:
                now = await asyncio.to_thread(catalog_fingerprint, self._live.dirs)
            except Exception:
                log.exception("catalog: cannot read the catalog directories")
                continue
            if now == self._live.fingerprint:
                settling = None
            elif now != settling:
                # Changed since the last poll: wait until it stays the same for one poll,
                # so that a file being copied in is not read half-written.
                settling = now
            else:
                settling = None
                await self.reload("a workflow file was added, changed or removed")

    async def _in_use(self) -> set[DefinitionKey]:
        async with self._db.read() as conn:
            records = await execution_store.with_status(conn, _UNFINISHED)
        return {(r.workflow_id, r.definition_digest) for r in records}


def pid_file(data_dir: Path) -> Path:
    """Where a running server writes its process ID."""
    return data_dir / PID_FILE_NAME


def write_pid_file(data_dir: Path) -> Path:
    """Write this process's ID to the pid file; return its path."""
    path = pid_file(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n", encoding="ascii")
    return path


def remove_pid_file(path: Path) -> None:
    """Remove the pid file if it still names this process (a newer server may own it now)."""
    with contextlib.suppress(OSError, ValueError):
        if path.read_text(encoding="ascii").strip() == str(os.getpid()):
            path.unlink()
