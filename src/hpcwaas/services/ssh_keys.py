"""SSH keys: generated here, the private half kept in the key store only; listed; deleted."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hpcwaas.secrets.base import ssh_key_path
from hpcwaas.secrets.sshkeys import generate_keypair
from hpcwaas.services.audit import AuditRecorder
from hpcwaas.services.errors import InvalidRequest, NotFound
from hpcwaas.services.quotas import check_ssh_key_count
from hpcwaas.services.runtime import Runtime
from hpcwaas.store import keys as key_records
from hpcwaas.store import users as user_store
from hpcwaas.store.audit import AuditAction
from hpcwaas.store.keys import SSHKeyRecord

# The original stores these two itself next to the metadata, so callers cannot set them.
RESERVED_METADATA = frozenset({"privateKey", "publicKey"})


async def generate_key(
    runtime: Runtime,
    audit: AuditRecorder,
    user_id: str,
    key_type: str,
    metadata: dict[str, Any],
) -> SSHKeyRecord:
    """Generate a key pair for the user: the private half goes to the key store only."""
    metadata = {k: v for k, v in metadata.items() if k not in RESERVED_METADATA}
    limit = runtime.settings.limits.max_metadata_bytes
    if len(json.dumps(metadata)) > limit:
        raise InvalidRequest(f"metadata is larger than {limit} bytes (limits.max_metadata_bytes)")
    # Refused before the (slow) key generation; checked again where the key is recorded.
    async with runtime.db.read() as conn:
        await check_ssh_key_count(conn, runtime.settings.limits, user_id)
    pair = await asyncio.to_thread(generate_keypair, key_type)
    key_id = str(uuid.uuid4())
    secret = {"privateKey": pair.private_pem, "publicKey": pair.public_line}
    secret.update({k: json.dumps(v) if not isinstance(v, str) else v for k, v in metadata.items()})
    await runtime.keystore.put(ssh_key_path(key_id), secret)
    record = SSHKeyRecord(
        id=key_id,
        owner=user_id,
        public_key=pair.public_line,
        fingerprint=pair.fingerprint,
        key_type=pair.key_type,
        metadata=metadata,
        created_at=datetime.now(UTC),
    )
    try:
        async with runtime.db.write() as conn:
            await user_store.ensure_user(conn, user_id)
            await user_store.lock_user(conn, user_id)
            await check_ssh_key_count(conn, runtime.settings.limits, user_id)
            await key_records.insert_key(conn, record)
            await audit.record(
                user_id,
                AuditAction.SSH_KEY_CREATE,
                key_id,
                details={"key_type": pair.key_type, "fingerprint": pair.fingerprint},
                conn=conn,
            )
    except BaseException:
        # No half-written state: a key pair nobody can list must not stay in the store.
        await runtime.keystore.delete(ssh_key_path(key_id))
        raise
    return record


async def list_keys(
    runtime: Runtime, user_id: str, limit: int, cursor: str | None
) -> tuple[list[SSHKeyRecord], str | None]:
    """One page of the user's keys, newest first, and the next page's cursor."""
    async with runtime.db.read() as conn:
        return await key_records.list_keys(conn, user_id, limit=limit, cursor=cursor)


async def delete_key(runtime: Runtime, audit: AuditRecorder, user_id: str, key_id: str) -> None:
    """Delete one of the user's keys, both halves; NotFound if the user has no such key."""
    async with runtime.db.read() as conn:
        owned = await key_records.get_key(conn, key_id, user_id)
    if owned is None:
        raise NotFound(f"SSH key {key_id!r} not found")
    # The private half first: if the key store is down the request fails (503) with the key
    # still listed, so it can be retried, rather than leaving a private key nobody can see.
    await runtime.keystore.delete(ssh_key_path(key_id))
    async with runtime.db.write() as conn:
        deleted = await key_records.delete_key(conn, key_id, user_id)
        if deleted:
            await audit.record(
                user_id,
                AuditAction.SSH_KEY_DELETE,
                key_id,
                details={"fingerprint": owned.fingerprint},
                conn=conn,
            )
    if not deleted:  # a concurrent delete won
        raise NotFound(f"SSH key {key_id!r} not found")
