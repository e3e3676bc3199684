"""The policy against guessing credentials: what is counted, against which keys, for how long.

Pure decisions, without I/O; ``auth.guard`` applies them to the counters in the database.
docs/security.md ("Guessing passwords and tokens") states the policy.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

# An IPv6 client usually holds a whole /64: one address of it is as good as another.
IPV6_PREFIX = 64


class Throttled(Exception):
    """A credential check refused without being made; the message is safe to show."""

    def __init__(self, detail: str, retry_after: int, status: int = 429) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.status = status


def client_address(host: str | None) -> str:
    """The address a client's failures count against: its IP, an IPv6 one as its /64."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


def _digest(*parts: str) -> str:
    # Stored as digests: a user name typed in the password field must not land in clear.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def address_key(address: str) -> str:
    """The counter key of a client address's failures."""
    return _digest("address", address)


def account_key(account: str) -> str:
    """The counter key of an account's failures."""
    return _digest("account", account)


def login_key(account: str, address: str) -> str:
    """The key that remembers an account's successful login from an address."""
    return _digest("login", account, address)


@dataclass(frozen=True)
class Budget:
    """At most ``limit`` failures counted in a window of ``seconds`` from its first failure."""

    limit: int
    seconds: float

    def window_cutoff(self, now: datetime) -> datetime:
        """Windows that started at or before this have ended: their count starts over."""
        return now - timedelta(seconds=self.seconds)

    def retry_after(self, started_at: datetime, now: datetime) -> int:
        """Whole seconds until the window that started at ``started_at`` ends (at least 1)."""
        return whole_seconds(started_at + timedelta(seconds=self.seconds) - now)


def whole_seconds(delta: timedelta) -> int:
    """A wait as Retry-After says it: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(delta.total_seconds()))


def too_many(what: str, retry_after: int) -> Throttled:
    """The 429 of a spent budget, saying whose and when to come back."""
    return Throttled(
        f"too many failed {what}; retry in {retry_after} s (auth.credential_limits)", retry_after
    )
