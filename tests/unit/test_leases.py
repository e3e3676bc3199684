"""Named leases (store/leases.py) on SQLite and PostgreSQL, and the replica identity."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest

from hpcwaas.replica import replica_id
from hpcwaas.store import leases
from hpcwaas.store.database import Database

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def _acquire(db: Database, owner: str, ttl: float = 60, now: datetime = T0) -> bool:
    async with db.write() as conn:
        return await leases.acquire(conn, "retention", owner, ttl, now=now)


async def test_a_free_lease_is_taken_and_refused_to_another_until_it_expires(db: Database) -> None:
    assert await _acquire(db, "replica-a", ttl=60)
    assert not await _acquire(db, "replica-b", now=T0 + timedelta(seconds=59))
    async with db.read() as conn:
        holder = await leases.holder(conn, "retention")
    assert holder is not None
    assert (holder.owner, holder.expires_at) == ("replica-a", T0 + timedelta(seconds=60))
    # expired: the other replica takes it over
    assert await _acquire(db, "replica-b", now=T0 + timedelta(seconds=60))
    async with db.read() as conn:
        holder = await leases.holder(conn, "retention")
    assert holder is not None and holder.owner == "replica-b"


async def test_the_holder_may_acquire_again_which_extends_its_lease(db: Database) -> None:
    assert await _acquire(db, "replica-a", ttl=60)
    assert await _acquire(db, "replica-a", ttl=60, now=T0 + timedelta(seconds=30))
    assert not await _acquire(db, "replica-b", now=T0 + timedelta(seconds=89))


async def test_renew_extends_only_a_lease_still_held(db: Database) -> None:
    assert await _acquire(db, "replica-a", ttl=60)
    async with db.write() as conn:
        later = T0 + timedelta(seconds=50)
        assert await leases.renew(conn, "retention", "replica-a", 60, now=later)
        assert not await leases.renew(conn, "retention", "replica-b", 60, now=T0)
    assert not await _acquire(db, "replica-b", now=T0 + timedelta(seconds=100))
    # lost after expiry: renewing it then fails, so the holder knows it must stop
    async with db.write() as conn:
        assert not await leases.renew(
            conn, "retention", "replica-a", 60, now=T0 + timedelta(seconds=110)
        )


async def test_release_frees_the_lease_for_another_but_not_when_someone_else_asks(
    db: Database,
) -> None:
    assert await _acquire(db, "replica-a")
    async with db.write() as conn:
        assert not await leases.release(conn, "retention", "replica-b")
    assert not await _acquire(db, "replica-b")
    async with db.write() as conn:
        assert await leases.release(conn, "retention", "replica-a")
    assert await _acquire(db, "replica-b")


async def test_leases_of_different_names_are_independent(db: Database) -> None:
    async with db.write() as conn:
        assert await leases.acquire(conn, "retention", "replica-a", 60, now=T0)
        assert await leases.acquire(conn, "catalog", "replica-b", 60, now=T0)


async def test_of_many_replicas_racing_for_a_free_lease_exactly_one_wins(
    database_url: str,
) -> None:
    # Separate engines (connection pools), as separate replicas would have.
    databases = [Database(database_url) for _ in range(5)]
    try:
        await databases[0].prepare_schema()

        async def take(i: int) -> bool:
            async with databases[i].write() as conn:
                return await leases.acquire(conn, "retention", f"replica-{i}", 60)

        won = await asyncio.gather(*(take(i) for i in range(5)))
    finally:
        for database in databases:
            await database.dispose()
    assert sum(won) == 1


async def test_a_bad_ttl_or_owner_is_refused(db: Database) -> None:
    async with db.write() as conn:
        with pytest.raises(ValueError, match="positive"):
            await leases.acquire(conn, "retention", "replica-a", 0)
        with pytest.raises(ValueError, match="owner"):
            await leases.acquire(conn, "retention", "", 60)


def test_replica_id_is_stable_in_a_process_and_fits_a_lease_owner() -> None:
    first = replica_id()
    assert first == replica_id()
    assert f":{os.getpid()}:" in first
    assert len(first) <= 64  # leases.owner and executions.lease_owner hold 64 characters
