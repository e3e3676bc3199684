"""Users' default cluster accounts and SSH keys, one per environment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.store.tables import cluster_identities


@dataclass(frozen=True)
class ClusterIdentity:
    environment: str
    login: str
    key_id: str


async def list_identities(conn: AsyncConnection, user_id: str) -> dict[str, ClusterIdentity]:
    """The user's identities by environment."""
    rows = await conn.execute(
        select(cluster_identities).where(cluster_identities.c.user_id == user_id)
    )
    return {r.environment: ClusterIdentity(r.environment, r.login, r.key_id) for r in rows}


async def get_identity(
    conn: AsyncConnection, user_id: str, environment: str
) -> ClusterIdentity | None:
    return (await list_identities(conn, user_id)).get(environment)


async def set_identity(
    conn: AsyncConnection, user_id: str, environment: str, login: str, key_id: str
) -> None:
    await conn.execute(
        delete(cluster_identities).where(
            cluster_identities.c.user_id == user_id,
            cluster_identities.c.environment == environment,
        )
    )
    await conn.execute(
        cluster_identities.insert().values(
            user_id=user_id,
            environment=environment,
            login=login,
            key_id=key_id,
            updated_at=datetime.now(UTC),
        )
    )


async def delete_identity(conn: AsyncConnection, user_id: str, environment: str) -> bool:
    result = await conn.execute(
        delete(cluster_identities).where(
            cluster_identities.c.user_id == user_id,
            cluster_identities.c.environment == environment,
        )
    )
    return result.rowcount > 0
