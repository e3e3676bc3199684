"""`/users`: who the caller is, and revoking a user's tokens."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response

from hpcwaas.api.models import UserPublic
from hpcwaas.auth.operators import is_operator
from hpcwaas.server.auditing import Audit
from hpcwaas.server.deps import CurrentUser, RuntimeDep
from hpcwaas.server.openapi import problems
from hpcwaas.server.problems import ApiProblem
from hpcwaas.store import users as user_store
from hpcwaas.store.audit import AuditAction

log = logging.getLogger(__name__)

router = APIRouter(tags=["users"])


@router.get("/users/me", response_model=UserPublic)
async def whoami(runtime: RuntimeDep, user: CurrentUser) -> UserPublic:
    """The caller's identity, groups, token expiry and whether they are an operator."""
    async with runtime.db.read() as conn:
        record = await user_store.get_user(conn, user.user_id)
    groups = set(user.groups) | set(record.groups if record else ())
    return UserPublic(
        user_id=user.user_id,
        display_name=(record.display_name if record else None) or user.display_name,
        email=record.email if record else None,
        groups=sorted(groups),
        token_expires_at=user.token_expires_at,
        operator=is_operator(runtime.settings.operators, user),
    )


@router.delete(
    "/users/{user_id}/tokens", status_code=204, response_class=Response, responses=problems(403)
)
async def revoke_user_tokens(
    user_id: str, runtime: RuntimeDep, user: CurrentUser, audit: Audit
) -> Response:
    """Revoke every token of a user: your own, or anyone's for an operator."""
    if user_id != user.user_id and not is_operator(runtime.settings.operators, user):
        raise ApiProblem(
            403,
            "you may revoke only your own tokens (DELETE /users/<your user ID>/tokens); "
            "revoking another user's is for operators, listed under the `operators` config key",
        )
    async with runtime.db.write() as conn:
        count = await user_store.revoke_user_tokens(conn, user_id)
        await audit.record(
            user.user_id,
            AuditAction.TOKEN_REVOKE,
            user_id,
            details={"tokens": count},
            conn=conn,
        )
    runtime.authenticator.forget_tokens()
    log.info("%r revoked %d token(s) of %r", user.user_id, count, user_id)
    return Response(status_code=204)
