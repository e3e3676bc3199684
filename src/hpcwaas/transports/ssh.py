"""The SSH transport: a pool of asyncssh connections, one per (host, port, login, key).

``SshPool.run`` runs a command and returns its output, ``put_file`` writes a file over
SFTP, and ``transport(target)`` adapts the pool to the ``Transport`` interface for
streaming commands (``ssh_command``). Errors are ``SshError`` subclasses
(``ssh_connection`` draws their tree); a private key is fetched with ``load_key(key_id)``
only when a connection is opened.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import asyncssh

from hpcwaas import telemetry as metrics
from hpcwaas.transports.base import Transport
from hpcwaas.transports.errors import TransportUnavailable
from hpcwaas.transports.ssh_command import SshTransport
from hpcwaas.transports.ssh_connection import (
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

__all__ = [
    "HostKeyNotTrusted",
    "KeyLoader",
    "RemoteResult",
    "SshAuthFailed",
    "SshError",
    "SshPool",
    "SshTarget",
    "SshUnavailable",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RemoteResult:
    """How a remote command ended: ``exit_code`` is 128 + N when killed by signal N.

    ``stdout`` and ``stderr`` are decoded as UTF-8, undecodable bytes replaced (safe to log
    and show); ``stdout_bytes`` is stdout exactly as it came.
    """

    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes = field(default=b"", repr=False)


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
    ) -> RemoteResult:
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

        SFTP failures become SshError, a dropped connection SshUnavailable; ``use`` must not
        let an OSError of its own escape (it would be taken for a dropped connection).
        """

        async def session(conn: asyncssh.SSHClientConnection) -> T:
            async with conn.start_sftp_client() as sftp:
                return await use(sftp)

        value, lease = await self._leased(target, session, what)
        lease.release()
        return value

    def transport(self, target: SshTarget) -> Transport:
        """A ``Transport`` that starts commands on ``target`` through this pool."""
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
    ) -> RemoteResult:
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
        return RemoteResult(code, _text(stdout), _text(_bytes(result.stderr)), stdout)

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
                raise SshError(f"{what} on {target.where} failed: {exc.reason}") from None
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
        pem = await self._load_key(target.key_id)
        try:
            conn = await open_connection(
                target,
                pem,
                connect_timeout=self.connect_timeout,
                keepalive_seconds=self.keepalive_seconds,
            )
        except Exception:
            metrics.SSH_CONNECTION_FAILURES.inc()
            raise
        finally:
            del pem  # the key lives on only in the connection's key object
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


async def write_atomically(
    sftp: asyncssh.SFTPClient, path: str, chunks: AsyncIterable[bytes], mode: int
) -> None:
    """Write ``chunks`` to ``path``, creating its parent directories: under a hidden
    temporary name first, renamed once complete, so the file appears whole with ``mode``
    or not at all."""
    parent = posixpath.dirname(path)
    # Usually the directory is there already (a step's working directory): one stat instead
    # of makedirs' one mkdir per path component, each a round trip before sbatch can run.
    if parent and not await sftp.isdir(parent):
        await sftp.makedirs(parent, exist_ok=True)
    name = posixpath.basename(path)
    partial = posixpath.join(parent, f".{name}.partial-{secrets.token_hex(4)}")
    try:
        async with sftp.open(partial, "wb", asyncssh.SFTPAttrs(permissions=mode)) as remote:
            async for chunk in chunks:
                await remote.write(chunk)
        await sftp.chmod(partial, mode)  # the umask may have narrowed it
        await sftp.posix_rename(partial, path)
    except BaseException:
        try:
            await sftp.remove(partial)
        except (asyncssh.Error, OSError):
            pass
        raise


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data
