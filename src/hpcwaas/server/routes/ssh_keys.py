"""`/ssh_keys`: generate (private half to the key store only), list, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response

from hpcwaas.api.models import SSHKeyCreate, SSHKeyCreated, SSHKeyList, SSHKeyPublic
from hpcwaas.secrets.sshkeys import DEFAULT_KEY_TYPE
from hpcwaas.server.auditing import Audit
from hpcwaas.server.deps import CurrentUser, RuntimeDep, page_size
from hpcwaas.server.openapi import problems
from hpcwaas.services import ssh_keys

router = APIRouter(tags=["ssh_keys"])


@router.post("/ssh_keys", status_code=201, response_model=SSHKeyCreated, responses=problems(409))
async def create_ssh_key(
    runtime: RuntimeDep,
    user: CurrentUser,
    audit: Audit,
    body: Annotated[SSHKeyCreate | None, Body()] = None,
) -> SSHKeyCreated:
    """Generate a key pair: the public half is returned (once), the private half stored."""
    # An unknown type never gets here: the model's Literal answers 400 naming the allowed ones.
    record = await ssh_keys.generate_key(
        runtime,
        audit,
        user.user_id,
        (body.type if body else None) or DEFAULT_KEY_TYPE,
        (body.metadata if body else None) or {},
    )
    return SSHKeyCreated(id=record.id, public_key=record.public_key)


@router.get("/ssh_keys", response_model=SSHKeyList)
async def list_ssh_keys(
    runtime: RuntimeDep,
    user: CurrentUser,
    limit: int | None = None,
    cursor: str | None = None,
) -> SSHKeyList:
    """The caller's keys, newest first: public halves and metadata only."""
    size = page_size(limit, runtime, default=50)
    items, next_cursor = await ssh_keys.list_keys(runtime, user.user_id, size, cursor)
    return SSHKeyList(
        ssh_keys=[
            SSHKeyPublic(
                id=k.id,
                public_key=k.public_key,
                fingerprint=k.fingerprint,
                key_type=k.key_type,
                metadata=k.metadata,
                created_at=k.created_at,
            )
            for k in items
        ],
        next_cursor=next_cursor,
    )


@router.delete("/ssh_keys/{key_id}", status_code=204, response_class=Response)
async def delete_ssh_key(
    key_id: str, runtime: RuntimeDep, user: CurrentUser, audit: Audit
) -> Response:
    """Delete one of the caller's keys, both halves."""
    await ssh_keys.delete_key(runtime, audit, user.user_id, key_id)
    return Response(status_code=204)
