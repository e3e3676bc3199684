"""This server process's identity among the replicas that share one database."""

from __future__ import annotations

import os
import secrets
import socket

# Lease owner columns hold 64 characters; the suffix and pid must survive the cut.
_MAX_LENGTH = 64
_HOST_LENGTH = 40

_cached: tuple[int, str] | None = None


def replica_id() -> str:
    """``<hostname>-<pid>-<random>``: unique per process, the same for its whole life.

    The random part tells apart two processes that reuse a PID (a restarted container); a
    forked child gets an identity of its own.
    """
    global _cached
    pid = os.getpid()
    if _cached is None or _cached[0] != pid:
        host = (socket.gethostname() or "host")[:_HOST_LENGTH]
        _cached = (pid, f"{host}-{pid}-{secrets.token_hex(4)}"[:_MAX_LENGTH])
    return _cached[1]
