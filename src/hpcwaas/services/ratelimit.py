"""Per-user rate of triggers: a token bucket held in this process.

Each server replica keeps its own buckets, so with N replicas behind a load balancer a
user may trigger up to N times the configured rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

# Past this many users, buckets that have refilled completely are dropped: they hold
# nothing a new bucket would not.
_PRUNE_ABOVE = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TriggerRateLimiter:
    """At most ``per_minute`` triggers per user in any minute, in bursts of up to ``per_minute``."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._capacity = float(per_minute)
        self._per_second = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, user_id: str) -> int:
        """Take one trigger for ``user_id``: 0 if allowed, else whole seconds to wait (>= 1)."""
        now = self._clock()
        bucket = self._buckets.get(user_id)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_ABOVE:
                self._prune(now)
            bucket = self._buckets[user_id] = _Bucket(self._capacity, now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self._capacity, bucket.tokens + elapsed * self._per_second)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self._per_second))

    def _prune(self, now: float) -> None:
        full = [
            user
            for user, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self._per_second >= self._capacity
        ]
        for user in full:
            del self._buckets[user]
