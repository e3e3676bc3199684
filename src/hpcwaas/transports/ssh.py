"""The SSH transport: a pool of asyncssh connections, one per (host, port, login, key).

``SshPool.run`` runs a command and returns its output, ``put_file`` writes a file over
SFTP, ``with_sftp`` lends an SFTP session, and ``transport(target)`` is the ``Transport``
of one target: ``SshTransport``, whose streamed commands are ``ssh_command``'s and whose
files are ``ssh_files``'. Errors are ``SshError`` subclasses (``ssh_connection`` draws
their tree), but a file to read that is missing is ``FileMissing``; a private key is
fetched with ``load_key(target)`` only when a connection is opened (with a certificate when the
target's environment signs them; a pooled connection may outlive its certificate).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from pathlib import PurePath
from typing import TypeVar

import asyncssh

from hpcwaas import telemetry as metrics
from hpcwaas.transports import ssh_files
from hpcwaas.transports.base import ChunkSink, CommandOutput, FileEntry, LineCallback
from hpcwaas.transports.errors import FileMissing, TransportUnavailable
from hpcwaas.transports.ssh_command import SshCommand, command_script
from hpcwaas.transports.ssh_connection import (
    ClientKey,
    Connection,
    HostKeyNotTrusted,
    KeyLoader,
    Lease,
    SshAuthFailed,
    SshError,
    SshTarget,
    SshUnavailable,
    exit_code_of,
    open_connection,
    reason,
)
from hpcwaas.transports.ssh_files import write_atomically

__all__ = [
    "ClientKey",
    "HostKeyNotTrusted",
    "KeyLoader",
    "SshAuthFailed",
    "SshError",
    "SshPool",
    "SshTarget",
    "SshTransport",
    "SshUnavailable",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


# After a failed connection to a host, callers waiting for the same target within this many
# seconds get the same failure at once: a login node that is down sees one attempt per
# interval however many steps want it, and the key store one read.
FAIL_FAST_SECONDS = 1.0


class SshPool:
    """SSH connections reused across calls, with a bound on the sessions of each connection.

    ``connections_opened`` counts the connections opened so far and ``peak_sessions`` the
    most sessions one connection held at once (both for tests and metrics).
    """

    def __init__(
        self,
        load_key: KeyLoader,
        *,
        max_sessions: int = 8,
        idle_seconds: float = 300,
        keepalive_seconds: float = 30,
        connect_timeout: float = 15,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self._load_key = load_key
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self.keepalive_seconds = keepalive_seconds
        self.connect_timeout = connect_timeout
        self._connections: dict[SshTarget, Connection] = {}
        self._connecting: dict[SshTarget, asyncio.Lock] = {}
        self._failed: dict[SshTarget, tuple[float, TransportUnavailable]] = {}
        self.connect_attempts = 0
        self._pruner: asyncio.Task[None] | None = None
        self.connections_opened = 0
        self.peak_sessions = 0

    def __repr__(self) -> str:
        return f"SshPool(connections={len(self._connections)}, max_sessions={self.max_sessions})"

    # ------------------------------------------------------------------------ public API

    async def run(
        self,
        target: SshTarget,
        command: str,
        *,
        stdin: str | None = None,
        timeout: float | None = 60,
    ) -> CommandOutput:
        """Run a command line (in the login's shell), wait for it, return its output.

        Past ``timeout`` the channel is closed and SshUnavailable raised; what the command
        started may still run (use ``transport()`` for commands that must be killable).
        """
        return await self._run(target, command, stdin=stdin, timeout=timeout, bounded=True)

    async def put_file(
        self, target: SshTarget, path: str, data: bytes, *, mode: int = 0o600
    ) -> None:
        """Write ``data`` to ``path`` over SFTP (relative to the login's home), creating its
        parent directories; the file appears at once, complete and with ``mode``."""

        async def write(conn: asyncssh.SSHClientConnection) -> None:
            async with conn.start_sftp_client() as sftp:
                await write_atomically(sftp, path, _one_chunk(data), mode)

        value, lease = await self._leased(target, write, f"writing {path}")
        lease.release()
        return value

    async def with_sftp(
        self,
        target: SshTarget,
        use: Callable[[asyncssh.SFTPClient], Awaitable[T]],
        what: str,
    ) -> T:
        """``use(sftp)`` on an SFTP session of ``target`` (paths relative to the login's home).

        SFTP failures become SshError (a missing file FileMissing), a dropped connection
        SshUnavailable; ``use`` must not let an OSError of its own escape (it would be taken
        for a dropped connection).
        """

        async def session(conn: asyncssh.SSHClientConnection) -> T:
            async with conn.start_sftp_client() as sftp:
                return await use(sftp)

        value, lease = await self._leased(target, session, what)
        lease.release()
        return value

    def transport(self, target: SshTarget) -> SshTransport:
        """The ``Transport`` of ``target``: commands and files there, through this pool."""
        return SshTransport(self, target)

    async def close(self) -> None:
        """Close every connection; the pool can still be used afterwards (it reconnects)."""
        if self._pruner is not None:
            self._pruner.cancel()
            self._pruner = None
        entries = list(self._connections.values())
        self._connections.clear()
        for entry in entries:
            entry.conn.close()
            metrics.SSH_CONNECTIONS_OPEN.dec()
        for entry in entries:
            try:
                await asyncio.wait_for(entry.conn.wait_closed(), 5)
            except (TimeoutError, asyncssh.Error, OSError):
                pass

    # --------------------------------------------------------------- for ssh_command

    async def _run(
        self,
        target: SshTarget,
        command: str,
        *,
        stdin: str | None,
        timeout: float | None,
        bounded: bool,
    ) -> CommandOutput:
        async def execute(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHCompletedProcess:
            data = None if stdin is None else stdin.encode()
            return await conn.run(command, input=data, check=False, timeout=timeout, encoding=None)

        try:
            result, lease = await self._leased(target, execute, "running a command", bounded)
        except asyncssh.TimeoutError:
            raise SshUnavailable(
                f"a command on {target.where} did not finish within {timeout} s"
            ) from None
        lease.release()
        code = exit_code_of(result.exit_status, result.exit_signal)
        if code is None:
            self._discard(target, lease.entry)
            raise SshUnavailable(f"the connection to {target.where} dropped during a command")
        stdout = _bytes(result.stdout)
        return CommandOutput(code, _text(stdout), _text(_bytes(result.stderr)), stdout)

    async def _leased(
        self,
        target: SshTarget,
        use: Callable[[asyncssh.SSHClientConnection], Awaitable[T]],
        what: str,
        bounded: bool = True,
    ) -> tuple[T, Lease]:
        """``use(conn)`` with a session slot held; the caller releases the returned lease.

        A connection that turns out dead when a channel is opened on it (nothing ran yet)
        is replaced once.
        """
        for attempt in (1, 2):
            lease = await self._lease(target, bounded)
            try:
                return await use(lease.conn), lease
            except asyncssh.ChannelOpenError as exc:
                lease.release()
                self._discard(target, lease.entry)
                if attempt == 2 or lease.fresh:
                    raise SshUnavailable(
                        f"{what} on {target.where} failed: {exc.reason or 'channel refused'}"
                    ) from None
            except asyncssh.TimeoutError:  # the command's, not the connection's: keep it
                lease.release()
                raise
            except (asyncssh.DisconnectError, OSError) as exc:
                lease.release()
                self._discard(target, lease.entry)
                raise SshUnavailable(
                    f"{what} on {target.where} failed: the connection dropped ({reason(exc)})"
                ) from None
            except asyncssh.SFTPError as exc:
                lease.release()
                error = FileMissing if isinstance(exc, asyncssh.SFTPNoSuchFile) else SshError
                raise error(f"{what} on {target.where} failed: {exc.reason}") from None
            except BaseException:
                lease.release()
                raise
        raise AssertionError("unreachable")

    async def _lease(self, target: SshTarget, bounded: bool = True) -> Lease:
        """A session slot on ``target``'s connection, connecting first when needed."""
        entry = self._connections.get(target)
        fresh = False
        if entry is None or entry.conn.is_closed():
            lock = self._connecting.setdefault(target, asyncio.Lock())
            async with lock:
                entry = self._connections.get(target)
                if entry is None or entry.conn.is_closed():
                    if entry is not None:
                        self._discard(target, entry)
                    entry = await self._connect_once(target)
                    fresh = True
        entry.active += 1
        # Unbounded sessions are for kills, which must not queue behind what they end.
        if bounded:
            try:
                await entry.sessions.acquire()
            except BaseException:
                entry.active -= 1
                raise
            entry.in_use += 1
            self.peak_sessions = max(self.peak_sessions, entry.in_use)
        return Lease(entry, fresh=fresh, bounded=bounded)

    # ------------------------------------------------------------------- connections

    async def _connect_once(self, target: SshTarget) -> Connection:
        """Connect, unless the last attempt failed a moment ago: then fail the same way."""
        now = time.monotonic()
        failed = self._failed.get(target)
        if failed is not None and now - failed[0] < FAIL_FAST_SECONDS:
            raise SshUnavailable(str(failed[1]))
        try:
            entry = await self._connect(target)
        except TransportUnavailable as exc:  # the key store's too (cluster_keys.load_ssh_key)
            self._failed[target] = (time.monotonic(), exc)
            raise
        self._failed.pop(target, None)
        return entry

    async def _connect(self, target: SshTarget) -> Connection:
        self.connect_attempts += 1
        client_key = await self._load_key(target)
        try:
            conn = await open_connection(
                target,
                client_key,
                connect_timeout=self.connect_timeout,
                keepalive_seconds=self.keepalive_seconds,
            )
        except Exception:
            metrics.SSH_CONNECTION_FAILURES.inc()
            raise
        finally:
            del client_key  # the key lives on only in the connection's key object
        self.connections_opened += 1
        metrics.SSH_CONNECTIONS_OPENED.inc()
        metrics.SSH_CONNECTIONS_OPEN.inc()
        log.info("connected to %s", target.where)
        loop = asyncio.get_running_loop()
        entry = Connection(conn, asyncio.Semaphore(self.max_sessions), loop.time())
        self._connections[target] = entry
        if self._pruner is None or self._pruner.done():
            self._pruner = asyncio.create_task(self._prune_idle())
        return entry

    def _discard(self, target: SshTarget, entry: Connection) -> None:
        """Forget a dead connection (and close it) so that the next call reconnects."""
        if self._connections.get(target) is entry:
            del self._connections[target]
            metrics.SSH_CONNECTIONS_OPEN.dec()
            log.info("connection to %s discarded", target.where)
        entry.conn.close()

    async def _prune_idle(self) -> None:
        """Close the connections nobody used for ``idle_seconds``."""
        interval = min(max(self.idle_seconds / 4, 0.05), 30.0)
        loop = asyncio.get_running_loop()
        while self._connections:
            await asyncio.sleep(interval)
            now = loop.time()
            for target, entry in list(self._connections.items()):
                if entry.conn.is_closed() or (
                    entry.active == 0 and now - entry.last_used >= self.idle_seconds
                ):
                    del self._connections[target]
                    metrics.SSH_CONNECTIONS_OPEN.dec()
                    entry.conn.close()
                    log.info("connection to %s closed after being idle", target.where)


def _bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


class SshTransport:
    """The ``Transport`` of one SSH target, through a pool's shared connection."""

    def __init__(self, pool: SshPool, target: SshTarget) -> None:
        self._pool = pool
        self._target = target

    def __repr__(self) -> str:
        return f"SshTransport({self._target.where})"

    async def start(
        self,
        command: str,
        *,
        cwd: PurePath | str,
        env: Mapping[str, str],
        on_stdout: LineCallback,
        on_stderr: LineCallback,
        timeout: float | None = None,
        grace: float = 5.0,
    ) -> SshCommand:
        """Start ``command`` in the remote directory ``cwd`` (created if missing) with ``env``."""
        script = command_script(command, cwd, env, grace)

        async def open_process(
            conn: asyncssh.SSHClientConnection,
        ) -> asyncssh.SSHClientProcess[bytes]:
            process: asyncssh.SSHClientProcess[bytes] = await conn.create_process(
                "/bin/bash -s", encoding=None
            )
            process.stdin.write(script.encode())
            process.stdin.write_eof()
            return process

        process, lease = await self._pool._leased(self._target, open_process, "starting a command")
        return SshCommand(
            self._pool, self._target, process, lease, on_stdout, on_stderr, timeout, grace
        )

    async def run(
        self, command: str, *, stdin: str | None = None, timeout: float | None = 60
    ) -> CommandOutput:
        """Run ``command`` in the login's shell; its output (``SshPool.run``)."""
        return await self._pool.run(self._target, command, stdin=stdin, timeout=timeout)

    async def put_file(self, path: str, data: bytes, *, mode: int = 0o600) -> None:
        """Write ``data`` to ``path`` over SFTP (``SshPool.put_file``)."""
        await self._pool.put_file(self._target, path, data, mode=mode)

    async def write_file(
        self, path: str, chunks: AsyncIterable[bytes], *, mode: int = 0o600
    ) -> None:
        """Write the chunks to ``path`` over SFTP: all or nothing."""
        await self._pool.with_sftp(
            self._target,
            lambda sftp: write_atomically(sftp, path, chunks, mode),
            f"writing {path}",
        )

    async def exists(self, path: str) -> bool:
        """Whether something is at ``path``."""
        return await self._pool.with_sftp(
            self._target, lambda sftp: ssh_files.exists(sftp, path), f"looking for {path}"
        )

    async def stat(self, path: str) -> FileEntry | None:
        """What is at ``path`` (symlinks followed), or None."""
        return await self._pool.with_sftp(
            self._target, lambda sftp: ssh_files.stat(sftp, path), f"reading {path}"
        )

    async def walk(self, path: str) -> list[FileEntry]:
        """Everything below directory ``path``, parents first."""
        return await self._pool.with_sftp(
            self._target, lambda sftp: ssh_files.walk(sftp, path), f"listing {path}"
        )

    async def read_file(self, path: str, sink: ChunkSink) -> None:
        """Pass the bytes of file ``path`` to ``sink``, chunk by chunk."""
        await self._pool.with_sftp(
            self._target, lambda sftp: ssh_files.read(sftp, path, sink), f"reading {path}"
        )
