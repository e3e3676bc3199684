"""One suite for every key store: the embedded one and HashiCorp Vault (on a real OpenBao).

The Vault store runs against the dev OpenBao server of tests/openbao_support.py; those cases
carry the markers ``vault`` and ``integration`` (they start a server).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.openbao_support import OpenBao

from hpcwaas.secrets.base import KeyStore, ssh_key_path
from hpcwaas.secrets.embedded import EmbeddedKeyStore, load_or_create_master_key
from hpcwaas.secrets.factory import close_keystore, ping
from hpcwaas.secrets.vault import VaultKeyStore
from hpcwaas.settings import VaultConfig
from hpcwaas.store.database import Database

VAULT = pytest.param("vault", marks=[pytest.mark.vault, pytest.mark.integration])


@pytest.fixture(params=["embedded", VAULT])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    if request.param == "embedded":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite3'}")
        await db.prepare_schema()
        yield EmbeddedKeyStore(db, load_or_create_master_key(tmp_path / "master.key"))
        await db.dispose()
    else:
        bao: OpenBao = request.getfixturevalue("openbao")
        vault_store = VaultKeyStore(VaultConfig(**bao.hpcwaas_config()))
        yield vault_store
        await close_keystore(vault_store)


def new_path() -> str:
    return ssh_key_path(str(uuid.uuid4()))


PAIR = {
    "privateKey": "-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----\n",
    "publicKey": "ssh-rsa AAAAB3NzaC1yc2E\n",
}


async def test_put_then_get_returns_the_same_fields(store: KeyStore) -> None:
    path = new_path()
    await store.put(path, {**PAIR, "cluster": "mn5"})
    assert await store.get(path) == {**PAIR, "cluster": "mn5"}


async def test_put_again_replaces_every_field(store: KeyStore) -> None:
    path = new_path()
    await store.put(path, {**PAIR, "old": "yes"})
    await store.put(path, {"privateKey": "new", "publicKey": "new"})
    assert await store.get(path) == {"privateKey": "new", "publicKey": "new"}


async def test_get_after_delete_is_none(store: KeyStore) -> None:
    path = new_path()
    await store.put(path, PAIR)
    await store.delete(path)
    assert await store.get(path) is None


async def test_get_of_a_path_never_written_is_none(store: KeyStore) -> None:
    assert await store.get(new_path()) is None


async def test_delete_of_a_path_never_written_is_quiet(store: KeyStore) -> None:
    await store.delete(new_path())


async def test_paths_are_isolated(store: KeyStore) -> None:
    first, second = new_path(), new_path()
    await store.put(first, {"privateKey": "one"})
    await store.put(second, {"privateKey": "two"})
    assert await store.get(first) == {"privateKey": "one"}
    await store.delete(first)
    assert await store.get(second) == {"privateKey": "two"}


async def test_unicode_keys_and_values_round_trip(store: KeyStore) -> None:
    path = new_path()
    data = {**PAIR, "clúster": "MareNostrum 5 — BSC", "note": "日本語 ✓ 🚀", "empty": ""}
    await store.put(path, data)
    assert await store.get(path) == data


async def test_concurrent_puts_all_land(store: KeyStore) -> None:
    paths = [new_path() for _ in range(8)]
    await asyncio.gather(*(store.put(p, {"privateKey": p}) for p in paths))
    assert [await store.get(p) for p in paths] == [{"privateKey": p} for p in paths]


async def test_ping_passes_on_a_working_store(store: KeyStore) -> None:
    await ping(store)
