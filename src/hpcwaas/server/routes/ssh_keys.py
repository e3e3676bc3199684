"""`/ssh_keys`: generate (private half to the key store only), list, delete."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Response

from hpcwaas.api.models import SSHKeyCreate, SSHKeyCreated, SSHKeyList, SSHKeyPublic
from hpcwaas.secrets.base import ssh_key_path
from hpcwaas.secrets.sshkeys import DEFAULT_KEY_TYPE, generate_keypair
from hpcwaas.server.auditing import Audit
from hpcwaas.server.deps import CurrentUser, ServicesDep, page_size
from hpcwaas.server.openapi import problems
from hpcwaas.server.problems import ApiProblem, not_found
from hpcwaas.server.quotas import check_ssh_key_count
from hpcwaas.store import keys as key_store
from hpcwaas.store import users as user_store
from hpcwaas.store.audit import AuditAction
from hpcwaas.store.keys import SSHKeyRecord

router = APIRouter(tags=["ssh_keys"])

# The original stores these two itself next to the metadata, so callers cannot set them.
RESERVED_METADATA = frozenset({"privateKey", "publicKey"})


@router.post("/ssh_keys", status_code=201, response_model=SSHKeyCreated, responses=problems(409))
async def create_ssh_key(
    services: ServicesDep,
    user: CurrentUser,
    audit: Audit,
    body: Annotated[SSHKeyCreate | None, Body()] = None,
) -> SSHKeyCreated:
    """Generate a key pair: the public half is returned (once), the private half stored."""
    sent = (body.metadata if body else None) or {}
    metadata = {k: v for k, v in sent.items() if k not in RESERVED_METADATA}
    limit = services.settings.limits.max_metadata_bytes
    if len(json.dumps(metadata)) > limit:
        raise ApiProblem(400, f"metadata is larger than {limit} bytes (limits.max_metadata_bytes)")
    # Refused before the (slow) key generation; checked again where the key is recorded.
    async with services.db.read() as conn:
        await check_ssh_key_count(conn, services.settings.limits, user.user_id)
    # An unknown type never gets here: the model's Literal answers 400 naming the allowed ones.
    pair = await asyncio.to_thread(
        generate_keypair, (body.type if body else None) or DEFAULT_KEY_TYPE
    )
    key_id = str(uuid.uuid4())
    secret = {"privateKey": pair.private_pem, "publicKey": pair.public_line}
    secret.update({k: json.dumps(v) if not isinstance(v, str) else v for k, v in metadata.items()})
    await services.keystore.put(ssh_key_path(key_id), secret)
    record = SSHKeyRecord(
        id=key_id,
        owner=user.user_id,
        public_key=pair.public_line,
        fingerprint=pair.fingerprint,
        key_type=pair.key_type,
        metadata=metadata,
        created_at=datetime.now(UTC),
    )
    try:
        async with services.db.write() as conn:
            await user_store.ensure_user(conn, user.user_id)
            await user_store.lock_user(conn, user.user_id)
            await check_ssh_key_count(conn, services.settings.limits, user.user_id)
            await key_store.insert_key(conn, record)
            await audit.record(
                user.user_id,
                AuditAction.SSH_KEY_CREATE,
                key_id,
                details={"key_type": pair.key_type, "fingerprint": pair.fingerprint},
                conn=conn,
            )
    except BaseException:
        # No half-written state: a key pair nobody can list must not stay in the store.
        await services.keystore.delete(ssh_key_path(key_id))
        raise
    return SSHKeyCreated(id=key_id, public_key=pair.public_line)


@router.get("/ssh_keys", response_model=SSHKeyList)
async def list_ssh_keys(
    services: ServicesDep,
    user: CurrentUser,
    limit: int | None = None,
    cursor: str | None = None,
) -> SSHKeyList:
    """The caller's keys, newest first: public halves and metadata only."""
    size = page_size(limit, services, default=50)
    async with services.db.read() as conn:
        items, next_cursor = await key_store.list_keys(
            conn, user.user_id, limit=size, cursor=cursor
        )
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
    key_id: str, services: ServicesDep, user: CurrentUser, audit: Audit
) -> Response:
    """Delete one of the caller's keys, both halves."""
    async with services.db.read() as conn:
        owned = await key_store.get_key(conn, key_id, user.user_id)
    if owned is None:
        raise not_found("SSH key", key_id)
    # The private half first: if the key store is down the request fails (503) with the key
    # still listed, so it can be retried, rather than leaving a private key nobody can see.
    await services.keystore.delete(ssh_key_path(key_id))
    async with services.db.write() as conn:
        deleted = await key_store.delete_key(conn, key_id, user.user_id)
        if deleted:
            await audit.record(
                user.user_id,
                AuditAction.SSH_KEY_DELETE,
                key_id,
                details={"fingerprint": owned.fingerprint},
                conn=conn,
            )
    if not deleted:  # a concurrent delete won
        raise not_found("SSH key", key_id)
    return Response(status_code=204)
