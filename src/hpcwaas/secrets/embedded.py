"""The embedded key store: secrets sealed with AES-256-GCM under a master key file, in the DB."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from hpcwaas.secrets.base import KeyStoreUnavailable
from hpcwaas.store.database import Database
from hpcwaas.store.tables import sealed_secrets

MASTER_KEY_BYTES = 32


def load_or_create_master_key(path: Path) -> bytes:
    """Read the master key, creating it (mode 0600) on first use; refuse one others can read."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyStoreUnavailable(
                f"master key file {path} is readable by other users (mode {mode:o}): "
                f"run `chmod 600 {path}`"
            ) from None
        key = path.read_bytes()
        if len(key) != MASTER_KEY_BYTES:
            raise KeyStoreUnavailable(
                f"master key file {path} is damaged (expected {MASTER_KEY_BYTES} bytes); "
                "restore it from backup: secrets sealed under it cannot be read without it"
            ) from None
        return key
    key = AESGCM.generate_key(bit_length=MASTER_KEY_BYTES * 8)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


class EmbeddedKeyStore:
    """Secrets encrypted at rest; the path is bound to each ciphertext as associated data."""

    def __init__(self, database: Database, master_key: bytes) -> None:
        self._db = database
        self._aead = AESGCM(master_key)

    async def put(self, path: str, data: dict[str, str]) -> None:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(data).encode(), path.encode())
        async with self._db.write() as conn:
            await conn.execute(delete(sealed_secrets).where(sealed_secrets.c.path == path))
            await conn.execute(
                sealed_secrets.insert().values(
                    path=path, nonce=nonce, ciphertext=sealed, created_at=datetime.now(UTC)
                )
            )

    async def get(self, path: str) -> dict[str, str] | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(sealed_secrets).where(sealed_secrets.c.path == path))
            ).first()
        if row is None:
            return None
        try:
            plain = self._aead.decrypt(row.nonce, row.ciphertext, path.encode())
        except InvalidTag:
            raise KeyStoreUnavailable(
                f"secret {path} cannot be decrypted: the master key file is not the one it was "
                "sealed with"
            ) from None
        data: dict[str, str] = json.loads(plain)
        return data

    async def delete(self, path: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(delete(sealed_secrets).where(sealed_secrets.c.path == path))

    async def check(self) -> None:
        """Raise KeyStoreUnavailable unless the sealed secrets can be read."""
        try:
            async with self._db.read() as conn:
                await conn.execute(select(sealed_secrets.c.path).limit(1))
        except SQLAlchemyError as exc:
            raise KeyStoreUnavailable(
                f"the embedded key store's database cannot be read ({type(exc).__name__})"
            ) from None
