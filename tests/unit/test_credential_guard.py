"""Guessing credentials: the policy (auth/throttle.py), its counters in the database (on SQLite
and PostgreSQL), the guard that applies both, and the bounded password hashing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hpcwaas.auth.guard import CredentialGuard, PasswordSlots
from hpcwaas.auth.passwords import hash_password, verify_password
from hpcwaas.auth.throttle import Budget, Throttled, client_address
from hpcwaas.settings import CredentialLimits
from hpcwaas.store import credential_failures
from hpcwaas.store.database import Database

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        (None, "unknown"),
        ("testclient", "testclient"),
    ],
)
def test_a_client_counts_by_its_address_and_ipv6_by_its_64(host: str | None, address: str) -> None:
    assert client_address(host) == address


def test_retry_after_is_the_rest_of_the_window_in_whole_seconds() -> None:
    budget = Budget(limit=3, seconds=60)
    assert budget.retry_after(T0, T0 + timedelta(seconds=10.2)) == 50
    assert budget.retry_after(T0, T0 + timedelta(seconds=59.99)) == 1
    assert budget.retry_after(T0, T0 + timedelta(seconds=61)) == 1
    assert budget.window_cutoff(T0) == T0 - timedelta(seconds=60)


def test_unknown_accounts_and_plain_passwords_cost_one_argon2_check_like_hashes() -> None:
    stored = hash_password("right")
    timings = {}
    for name, account in {"hash": stored, "plain": "right", "unknown": None}.items():
        start = time.perf_counter()
        assert not verify_password(account, "wrong")
        timings[name] = time.perf_counter() - start
    assert verify_password(stored, "right")
    assert verify_password("right", "right")
    assert not verify_password(None, "right")
    # Each took an argon2 verification: within a factor of the slowest, not 50x faster.
    slowest = max(timings.values())
    assert min(timings.values()) > slowest / 4, timings


async def test_a_window_holds_its_limit_then_starts_over(db: Database) -> None:
    cutoff = T0 - timedelta(seconds=60)
    async with db.write() as conn:
        taken = [
            await credential_failures.take(conn, "k", limit=3, now=T0, window_cutoff=cutoff)
            for _ in range(4)
        ]
    assert [counted for counted, _ in taken] == [True, True, True, False]
    assert [tally.failures for _, tally in taken] == [1, 2, 3, 3]
    assert {tally.started_at for _, tally in taken} == {T0}

    async with db.write() as conn:
        await credential_failures.give_back(conn, "k", T0)
        counted, tally = await credential_failures.take(
            conn, "k", limit=3, now=T0, window_cutoff=cutoff
        )
    assert counted and tally.failures == 3

    later = T0 + timedelta(seconds=60)
    async with db.write() as conn:
        counted, tally = await credential_failures.take(
            conn, "k", limit=3, now=later, window_cutoff=later - timedelta(seconds=60)
        )
        # Giving back into a window that ended changes nothing.
        await credential_failures.give_back(conn, "k", T0)
    assert counted and tally == credential_failures.Tally(later, 1)


async def test_known_logins_are_remembered_and_forgotten(db: Database) -> None:
    async with db.write() as conn:
        await credential_failures.remember_login(conn, "alice@a", T0)
        await credential_failures.take(
            conn, "k", limit=3, now=T0, window_cutoff=T0 - timedelta(seconds=60)
        )
    async with db.read() as conn:
        assert await credential_failures.logged_in_since(conn, "alice@a", T0 - timedelta(days=1))
        assert not await credential_failures.logged_in_since(conn, "alice@a", T0)
        assert not await credential_failures.logged_in_since(conn, "bob@a", T0 - timedelta(1))
    async with db.write() as conn:
        await credential_failures.forget(
            conn, windows_before=T0 + timedelta(seconds=1), logins_before=T0 + timedelta(days=1)
        )
        counted, tally = await credential_failures.take(
            conn, "k", limit=3, now=T0, window_cutoff=T0 - timedelta(seconds=60)
        )
    async with db.read() as conn:
        assert not await credential_failures.logged_in_since(
            conn, "alice@a", T0 - timedelta(days=1)
        )
    assert counted and tally.failures == 1


LIMITS = CredentialLimits(window_seconds=60, max_failures_per_address=5, max_failures_per_account=3)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'guard.sqlite3'}")
    await database.prepare_schema()
    yield database
    await database.dispose()


def _checker(password: str) -> Callable[[], Awaitable[bool]]:
    async def verify() -> bool:
        return password == "right"

    return verify


async def test_an_address_past_its_budget_is_throttled_until_its_window_ends(
    sqlite_db: Database,
) -> None:
    clock = Clock()
    guard = CredentialGuard(LIMITS, sqlite_db, clock)
    for n in range(5):
        assert not await guard.check_password("10.0.0.1", f"user{n}", _checker("wrong"))
    clock.advance(20)
    with pytest.raises(Throttled) as refused:
        await guard.check_password("10.0.0.1", "user9", _checker("right"))
    assert (refused.value.status, refused.value.retry_after) == (429, 40)
    assert "from this address" in str(refused.value)
    # Known here now: refused without a query, tokens too.
    with pytest.raises(Throttled):
        guard.check_address("10.0.0.1")
    # Another address is not concerned.
    assert await guard.check_password("10.0.0.2", "user9", _checker("right"))
    # The back-off ends with the window.
    clock.advance(40)
    guard.check_address("10.0.0.1")
    assert await guard.check_password("10.0.0.1", "user9", _checker("right"))


async def test_unknown_tokens_count_against_the_address(sqlite_db: Database) -> None:
    clock = Clock()
    guard = CredentialGuard(LIMITS, sqlite_db, clock)
    for _ in range(5):
        await guard.count_failure("10.0.0.1")
    with pytest.raises(Throttled) as refused:
        await guard.count_failure("10.0.0.1")
    assert refused.value.retry_after == 60
    with pytest.raises(Throttled):
        await guard.check_password("10.0.0.1", "alice", _checker("right"))
    await guard.count_failure("10.0.0.2")


async def test_a_right_password_gives_its_failures_back(sqlite_db: Database) -> None:
    guard = CredentialGuard(LIMITS, sqlite_db, Clock())
    for _ in range(20):
        assert await guard.check_password("10.0.0.1", "alice", _checker("right"))


async def test_an_account_under_attack_still_lets_its_user_in_from_a_known_address(
    sqlite_db: Database,
) -> None:
    clock = Clock()
    guard = CredentialGuard(LIMITS, sqlite_db, clock)
    assert await guard.check_password("10.0.0.1", "alice", _checker("right"))  # alice's own
    # Guesses from many addresses, a few each (under the address budget).
    for n in range(3):
        assert not await guard.check_password(f"10.9.0.{n}", "alice", _checker("wrong"))
    with pytest.raises(Throttled) as refused:
        await guard.check_password("10.9.0.9", "alice", _checker("right"))
    assert "for this account" in str(refused.value)
    assert refused.value.retry_after == 60
    # Her own address is not held to the account's budget; other accounts are not concerned.
    assert await guard.check_password("10.0.0.1", "alice", _checker("right"))
    assert await guard.check_password("10.9.0.9", "bob", _checker("right"))
    # A new address waits for the window's end, not forever.
    clock.advance(60)
    assert await guard.check_password("10.9.0.9", "alice", _checker("right"))


async def test_a_known_address_expires(sqlite_db: Database) -> None:
    clock = Clock()
    limits = LIMITS.model_copy(update={"known_address_seconds": 100})
    guard = CredentialGuard(limits, sqlite_db, clock)
    assert await guard.check_password("10.0.0.1", "alice", _checker("right"))
    clock.advance(101)
    for n in range(3):
        assert not await guard.check_password(f"10.9.0.{n}", "alice", _checker("wrong"))
    with pytest.raises(Throttled):
        await guard.check_password("10.0.0.1", "alice", _checker("right"))


async def test_one_address_holds_at_most_its_share_of_the_hashing_slots() -> None:
    slots = PasswordSlots(concurrent=3, per_address=1, queue=10)
    running: dict[str, int] = {"flood": 0, "user": 0}
    most: dict[str, int] = {"flood": 0, "user": 0}
    order: list[str] = []

    async def check(address: str) -> None:
        async with slots.slot(address):
            running[address] += 1
            most[address] = max(most[address], running[address])
            await asyncio.sleep(0.01)
            running[address] -= 1
            order.append(address)

    flood = [asyncio.create_task(check("flood")) for _ in range(6)]
    await asyncio.sleep(0)
    await check("user")
    # The user's check ran alongside the flood's first, not after its six.
    assert order.index("user") <= 1, order
    await asyncio.gather(*flood)
    assert most == {"flood": 1, "user": 1}


async def test_too_many_waiting_checks_are_refused_at_once_with_503() -> None:
    slots = PasswordSlots(concurrent=1, per_address=1, queue=2)
    release = asyncio.Event()

    async def hold(address: str, priority: bool = False) -> None:
        async with slots.slot(address, priority=priority):
            await release.wait()

    held = [asyncio.create_task(hold(f"a{n}")) for n in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(Throttled) as refused:
        async with slots.slot("late"):
            pass
    assert (refused.value.status, refused.value.retry_after) == (503, 1)
    # A check from a known address is not refused: it waits, first in line.
    known = asyncio.create_task(hold("known", priority=True))
    await asyncio.sleep(0)
    assert not known.done()
    release.set()
    await asyncio.gather(*held, known)
    async with slots.slot("late"):
        pass


async def test_one_address_cannot_fill_the_queue_for_the_others() -> None:
    slots = PasswordSlots(concurrent=1, per_address=1, queue=2)
    release = asyncio.Event()

    async def hold(address: str) -> None:
        async with slots.slot(address):
            await release.wait()

    flood = [asyncio.create_task(hold("flood")) for _ in range(10)]
    await asyncio.sleep(0)
    other = asyncio.create_task(hold("other"))
    await asyncio.sleep(0)
    assert not other.done()  # waiting, not refused
    release.set()
    await asyncio.gather(*flood, other)


async def test_a_check_from_a_known_address_goes_before_the_others_waiting() -> None:
    slots = PasswordSlots(concurrent=1, per_address=1, queue=10)
    release = asyncio.Event()
    order: list[str] = []

    async def check(address: str, priority: bool = False) -> None:
        async with slots.slot(address, priority=priority):
            if address == "first":
                await release.wait()
            order.append(address)

    first = asyncio.create_task(check("first"))
    await asyncio.sleep(0)
    flood = [asyncio.create_task(check(f"bot{n}")) for n in range(5)]
    await asyncio.sleep(0)
    user = asyncio.create_task(check("user", priority=True))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, user, *flood)
    assert order[:2] == ["first", "user"], order


async def test_a_waiting_check_that_gives_up_frees_its_place() -> None:
    slots = PasswordSlots(concurrent=1, per_address=1, queue=10)
    release = asyncio.Event()

    async def hold() -> None:
        async with slots.slot("a"):
            await release.wait()

    held = asyncio.create_task(hold())
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01), slots.slot("b"):
            pass
    release.set()
    await held
    async with asyncio.timeout(1), slots.slot("c"):
        pass
