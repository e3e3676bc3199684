"""`/users/me`: who the caller is."""

from __future__ import annotations

from fastapi import APIRouter

from hpcwaas.api.models import UserPublic
from hpcwaas.server.deps import CurrentUser, ServicesDep
from hpcwaas.store import users as user_store

router = APIRouter(tags=["users"])


@router.get("/users/me", response_model=UserPublic)
async def whoami(services: ServicesDep, user: CurrentUser) -> UserPublic:
    """The caller's identity, groups and token expiry."""
    async with services.db.read() as conn:
        record = await user_store.get_user(conn, user.user_id)
    groups = set(user.groups) | set(record.groups if record else ())
    return UserPublic(
        user_id=user.user_id,
        display_name=(record.display_name if record else None) or user.display_name,
        email=record.email if record else None,
        groups=sorted(groups),
        token_expires_at=user.token_expires_at,
    )
