"""One SSH connection: its target, its errors, and how it is opened and shared.

Errors, all of them ``SshError`` and so ``TransportError`` (``transports/errors.py``), with
a message safe to show the user and a ``retryable`` flag::

    SshError
    ├── HostKeyNotTrusted   unknown or changed host key; nothing was sent (AccessRefused)
    ├── SshAuthFailed       the server refused the key (AccessRefused)
    └── SshUnavailable      refused, timed out, dropped (TransportUnavailable, retryable)

The private key is imported from its PEM only to open the connection and lives on only
inside asyncssh's key object of that connection: it is never written anywhere, logged, or
part of a ``repr`` or an error message. With it may come a certificate (``ClientKey``), signed
by a CA the server trusts; sshd checks it only at login, so a connection outlives it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncssh

from hpcwaas.transports.errors import AccessRefused, TransportError, TransportUnavailable


@dataclass(frozen=True)
class SshTarget:
    """Where to connect and as whom: the key of the connection pool.

    ``execution_id`` is set when the connection logs in with a certificate naming that
    execution: an account's executions then have a connection each.
    """

    host: str
    port: int
    login: str
    key_id: str
    known_hosts: str  # known_hosts lines (newline-separated) that the host key must match
    execution_id: str | None = None

    @property
    def where(self) -> str:
        """``login@host:port``, for messages."""
        return f"{self.login}@{self.host}:{self.port}"


@dataclass(frozen=True)
class ClientKey:
    """What a connection logs in with: a private key (PEM: OpenSSH, PKCS#1 or PKCS#8) and
    maybe a certificate of its public half (an OpenSSH certificate line)."""

    pem: str
    certificate: str | None = None

    def __repr__(self) -> str:  # keep the private key out of logs and tracebacks
        return f"ClientKey(certificate={self.certificate is not None})"


# The target -> what to log in with, for a new connection (the private key from the key store).
KeyLoader = Callable[[SshTarget], Awaitable[ClientKey]]


def public_key_line(pem: str) -> str:
    """The OpenSSH public key line of a private key PEM; ValueError if it cannot be read."""
    try:
        key = asyncssh.import_private_key(pem)
    except (ValueError, asyncssh.KeyImportError):
        raise ValueError("the private key cannot be read") from None
    return key.export_public_key("openssh").decode().strip()


class SshError(TransportError):
    """An SSH failure; the message is safe to show users and never holds key material."""


class HostKeyNotTrusted(SshError, AccessRefused):
    """The host's key is not one of the target's known_hosts lines; nothing was sent."""


class SshAuthFailed(SshError, AccessRefused):
    """The server refused the key."""


class SshUnavailable(SshError, TransportUnavailable):
    """The host could not be reached, or the connection dropped: retrying may help."""


def exit_code_of(status: int | None, exit_signal: tuple[str, bool, str, str] | None) -> int | None:
    """The shell-style exit code of an SSH channel, None when it reported neither."""
    if status is not None and status >= 0:
        return status
    if exit_signal is not None:
        try:
            return 128 + signal.Signals[f"SIG{exit_signal[0]}"].value
        except KeyError:
            return 255
    return None


@dataclass(eq=False)
class Connection:
    """One open connection and the sessions on it."""

    conn: asyncssh.SSHClientConnection
    sessions: asyncio.Semaphore
    last_used: float
    active: int = 0  # sessions held or waited for: a connection in use is never pruned
    in_use: int = 0  # bounded sessions held

    def __repr__(self) -> str:
        return f"Connection(active={self.active}, in_use={self.in_use})"


class Lease:
    """One session on a connection, released exactly once."""

    def __init__(self, entry: Connection, *, fresh: bool, bounded: bool) -> None:
        self.entry = entry
        self.fresh = fresh  # the connection was opened for this lease
        self._bounded = bounded
        self._released = False

    @property
    def conn(self) -> asyncssh.SSHClientConnection:
        return self.entry.conn

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._bounded:
            self.entry.sessions.release()
            self.entry.in_use -= 1
        self.entry.active -= 1
        self.entry.last_used = asyncio.get_running_loop().time()


async def open_connection(
    target: SshTarget, client_key: ClientKey, *, connect_timeout: float, keepalive_seconds: float
) -> asyncssh.SSHClientConnection:
    """Connect and log in with ``client_key``, checking the host key against the target's."""
    try:
        known_hosts = asyncssh.import_known_hosts(target.known_hosts)
    except (ValueError, asyncssh.Error):
        raise HostKeyNotTrusted(
            f"the known host keys configured for {target.host}:{target.port} cannot be read"
        ) from None
    try:
        key = asyncssh.import_private_key(client_key.pem)
    except (ValueError, asyncssh.KeyImportError):
        raise SshError(f"the SSH key {target.key_id} cannot be read") from None
    credentials: asyncssh.SSHKey | tuple[asyncssh.SSHKey, asyncssh.SSHCertificate] = key
    if client_key.certificate is not None:
        try:
            credentials = (key, asyncssh.import_certificate(client_key.certificate))
        except (ValueError, asyncssh.KeyImportError):
            raise SshError(f"the certificate of SSH key {target.key_id} cannot be read") from None
    try:
        return await asyncio.wait_for(
            asyncssh.connect(
                target.host,
                target.port,
                username=target.login,
                client_keys=[credentials],
                known_hosts=known_hosts,
                config=None,  # no ~/.ssh/config of the server's account
                agent_path=None,
                password=None,
                kbdint_auth=False,
                gss_auth=False,
                preferred_auth="publickey",
                connect_timeout=connect_timeout,
                keepalive_interval=keepalive_seconds,
                keepalive_count_max=3,
            ),
            connect_timeout + 5,
        )
    except asyncssh.HostKeyNotVerifiable:
        raise HostKeyNotTrusted(
            f"the host key of {target.host}:{target.port} does not match the known host "
            f"keys configured for it: nothing was sent (login {target.login})"
        ) from None
    except asyncssh.PermissionDenied:
        if client_key.certificate is not None:
            raise SshAuthFailed(
                f"{target.where} refused the certificate of SSH key {target.key_id}: its sshd "
                "must trust the environment's SSH CA (TrustedUserCAKeys) and accept the "
                f"principal {target.login}"
            ) from None
        raise SshAuthFailed(
            f"{target.where} refused the SSH key {target.key_id}: add its public key to "
            f"~/.ssh/authorized_keys of {target.login}@{target.host}"
        ) from None
    except (TimeoutError, asyncssh.Error, OSError) as exc:
        raise SshUnavailable(f"cannot connect to {target.where}: {reason(exc)}") from None


def reason(exc: BaseException) -> str:
    """A short, key-free description of a connection failure."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, asyncssh.DisconnectError):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__
