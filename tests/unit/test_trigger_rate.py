"""The per-user token bucket behind `limits.max_triggers_per_minute`."""

from __future__ import annotations

from hpcwaas.services.ratelimit import TriggerRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_limit_passes_and_the_next_waits_for_one_refill() -> None:
    clock = Clock()
    limiter = TriggerRateLimiter(6, clock)  # one trigger back every 10 s
    assert [limiter.acquire("alice") for _ in range(6)] == [0] * 6
    assert limiter.acquire("alice") == 10
    clock.now += 4
    assert limiter.acquire("alice") == 6
    clock.now += 6
    assert limiter.acquire("alice") == 0
    assert limiter.acquire("alice") == 10


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    clock = Clock()
    limiter = TriggerRateLimiter(60, clock)  # one per second
    for _ in range(60):
        limiter.acquire("alice")
    clock.now += 0.999
    assert limiter.acquire("alice") == 1
    clock.now += 0.001
    assert limiter.acquire("alice") == 0


def test_a_refused_trigger_does_not_push_the_wait_further() -> None:
    clock = Clock()
    limiter = TriggerRateLimiter(1, clock)
    assert limiter.acquire("alice") == 0
    assert limiter.acquire("alice") == 60
    clock.now += 30
    assert limiter.acquire("alice") == 30
    clock.now += 30
    assert limiter.acquire("alice") == 0


def test_users_have_their_own_buckets() -> None:
    clock = Clock()
    limiter = TriggerRateLimiter(2, clock)
    assert limiter.acquire("alice") == limiter.acquire("alice") == 0
    assert limiter.acquire("alice") > 0
    assert limiter.acquire("bob") == 0


def test_an_idle_user_gets_no_more_than_the_limit_back() -> None:
    clock = Clock()
    limiter = TriggerRateLimiter(3, clock)
    limiter.acquire("alice")
    clock.now += 3600
    assert [limiter.acquire("alice") for _ in range(4)][:3] == [0, 0, 0]
    assert limiter.acquire("alice") > 0
