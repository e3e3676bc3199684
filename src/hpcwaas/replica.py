"""This process's name among the replicas sharing one database (leases record it)."""

from __future__ import annotations

import functools
import os
import secrets
import socket


@functools.cache
def replica_id() -> str:
    """``host:pid:random``: unique per process start, readable in the database and the logs."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
