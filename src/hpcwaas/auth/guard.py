"""Applies auth.credential_limits: failure budgets kept in the database, bounded hashing here.

Passwords: each check takes one failure from its client address's budget and one from its
account's before argon2 runs, and gives both back when the password is right; a spent
budget answers 429 without hashing. An address the account logged in from recently is not
held to the account's budget, so someone guessing a user's password elsewhere does not lock
that user out. Unknown tokens count against the address. docs/security.md has the policy.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.auth.throttle import (
    Budget,
    Throttled,
    account_key,
    address_key,
    login_key,
    too_many,
    whole_seconds,
)
from hpcwaas.settings import CredentialLimits
from hpcwaas.store import credential_failures as store
from hpcwaas.store.credential_failures import Tally
from hpcwaas.store.database import Database

# Past this many throttled addresses remembered here, those whose wait is over are dropped.
_PRUNE_ABOVE = 10_000
_BUSY = "the server is busy checking passwords; retry in 1 s (auth.credential_limits)"


class _Lanes:
    """``capacity`` slots handed out in order of arrival, the priority lane's waiters first."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._waiters: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}

    async def acquire(self, priority: bool) -> None:
        if self._free > 0 and not (self._waiters[True] or self._waiters[False]):
            self._free -= 1
            return
        handed = asyncio.get_running_loop().create_future()
        self._waiters[priority].append(handed)
        try:
            await handed
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self.release()  # handed over just as the waiter gave up: pass it on
            else:
                self._waiters[priority].remove(handed)
            raise

    def release(self) -> None:
        for lane in (True, False):
            waiters = self._waiters[lane]
            while waiters:
                handed = waiters.popleft()
                if not handed.done():
                    handed.set_result(None)
                    return
        self._free += 1


class PasswordSlots:
    """At most ``concurrent`` password checks at once; each address runs at most
    ``per_address`` of them and queues the rest behind its own, so that one client's flood
    holds few of the slots; past those, more than ``queue`` checks waiting are refused, and
    a priority check (from an account's known address) is never refused and goes first."""

    def __init__(self, concurrent: int, per_address: int, queue: int) -> None:
        self._all = _Lanes(concurrent)
        self._per_address = per_address
        self._queue = queue
        self._waiting = 0
        # address -> (its semaphore, checks running or waiting from it)
        self._addresses: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def slot(self, address: str, priority: bool = False) -> AsyncIterator[None]:
        """Hold a slot for one check from ``address``; Throttled (503) if too many wait."""
        own, checks = self._addresses.get(address, (asyncio.Semaphore(self._per_address), 0))
        self._addresses[address] = (own, checks + 1)
        try:
            async with own:
                # Counted once past its address's own queue: one address cannot fill it.
                if not priority and self._waiting >= self._queue:
                    raise Throttled(_BUSY, 1, status=503)
                self._waiting += 1
                try:
                    await self._all.acquire(priority)
                finally:
                    self._waiting -= 1
                try:
                    yield
                finally:
                    self._all.release()
        finally:
            own, checks = self._addresses[address]
            if checks == 1:
                del self._addresses[address]
            else:
                self._addresses[address] = (own, checks - 1)


async def _spend(
    conn: AsyncConnection, key: str, budget: Budget, now: datetime
) -> tuple[bool, Tally]:
    """Take one failure from ``key``'s ``budget``: whether it was there, and the tally."""
    return await store.take(
        conn, key, limit=budget.limit, now=now, window_cutoff=budget.window_cutoff(now)
    )


@dataclass(frozen=True)
class _Taken:
    """The failures a password check took in advance (given back if it succeeds), and
    whether the account logged in from this address before."""

    address: Tally
    account: Tally | None
    known: bool


class CredentialGuard:
    """Failure budgets per client address and per account, and bounded password hashing."""

    def __init__(
        self,
        limits: CredentialLimits,
        db: Database,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self._clock = clock
        self._by_address = Budget(limits.max_failures_per_address, limits.window_seconds)
        self._by_account = Budget(limits.max_failures_per_account, limits.window_seconds)
        self._known_for = timedelta(seconds=limits.known_address_seconds)
        self._slots = PasswordSlots(
            limits.max_password_checks,
            limits.max_password_checks_per_address,
            limits.max_queued_password_checks,
        )
        # Addresses found over budget, until their window ends: refused without a query.
        self._throttled: dict[str, datetime] = {}
        self._next_sweep = clock()

    def check_address(self, address: str) -> None:
        """Throttled if ``address`` is known here to have spent its budget."""
        until = self._throttled.get(address)
        if until is None:
            return
        now = self._clock()
        if until <= now:
            del self._throttled[address]
            return
        raise too_many("credential checks from this address", whole_seconds(until - now))

    async def count_failure(self, address: str) -> None:
        """Count a failed check of a token or device code against ``address``; Throttled
        once its budget is spent."""
        now = self._clock()
        async with self._db.write() as conn:
            counted, tally = await _spend(conn, address_key(address), self._by_address, now)
            await self._sweep(conn, now)
        if not counted:
            raise self._throttle(address, tally, now)

    async def check_password(
        self, address: str, account: str, verify: Callable[[], Awaitable[bool]]
    ) -> bool:
        """Run ``verify`` (one password check of ``account``) within the budgets and slots."""
        self.check_address(address)
        taken = await self._take(address, account)
        # A known address goes first: a flood of checks from many addresses does not hold up
        # its users' logins.
        async with self._slots.slot(address, priority=taken.known):
            ok = await verify()
        if ok:
            now = self._clock()
            async with self._db.write() as conn:
                await store.give_back(conn, address_key(address), taken.address.started_at)
                if taken.account is not None:
                    await store.give_back(conn, account_key(account), taken.account.started_at)
                await store.remember_login(conn, login_key(account, address), now)
        return ok

    async def _take(self, address: str, account: str) -> _Taken:
        """Take one failure from the address's and the account's budgets, or Throttled."""
        now = self._clock()
        async with self._db.write() as conn:
            taken = await self._take_in(conn, address, account, now)
            await self._sweep(conn, now)
        if isinstance(taken, Throttled):
            raise taken
        return taken

    async def _take_in(
        self, conn: AsyncConnection, address: str, account: str, now: datetime
    ) -> _Taken | Throttled:
        counted, by_address = await _spend(conn, address_key(address), self._by_address, now)
        if not counted:
            return self._throttle(address, by_address, now)
        counted, by_account = await _spend(conn, account_key(account), self._by_account, now)
        known = await store.logged_in_since(
            conn, login_key(account, address), now - self._known_for
        )
        if counted or known:
            return _Taken(by_address, by_account if counted else None, known)
        # The address's failure stays taken: a guess at a throttled account is a guess.
        retry_after = self._by_account.retry_after(by_account.started_at, now)
        return too_many("logins for this account", retry_after)

    def _throttle(self, address: str, tally: Tally, now: datetime) -> Throttled:
        """Remember that ``address`` spent its budget; the 429 that says so."""
        retry_after = self._by_address.retry_after(tally.started_at, now)
        if len(self._throttled) >= _PRUNE_ABOVE:
            self._throttled = {a: t for a, t in self._throttled.items() if t > now}
        self._throttled[address] = now + timedelta(seconds=retry_after)
        return too_many("credential checks from this address", retry_after)

    async def _sweep(self, conn: AsyncConnection, now: datetime) -> None:
        """Now and then, remove counters whose window ended and logins no longer known."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + timedelta(seconds=self._by_address.seconds)
        await store.forget(
            conn,
            windows_before=self._by_address.window_cutoff(now),
            logins_before=now - self._known_for,
        )
