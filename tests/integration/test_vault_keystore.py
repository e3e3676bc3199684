"""The Vault key store against the KV v2 test server: layout, AppRole, tokens, outages.

Vault itself cannot be installed here; tests/vault_kv2.py follows its documented HTTP API.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import hvac
import pytest

from hpcwaas.secrets.base import KeyStoreUnavailable, ssh_key_path
from hpcwaas.secrets.embedded import EmbeddedKeyStore
from hpcwaas.secrets.factory import close_keystore, open_keystore, ping
from hpcwaas.secrets.vault import VaultKeyStore
from hpcwaas.settings import ConfigError, Settings, VaultConfig
from hpcwaas.store.database import Database

if TYPE_CHECKING:
    from tests.vault_kv2 import FakeVault


PAIR = {"privateKey": "-----BEGIN RSA PRIVATE KEY-----\nx\n", "publicKey": "ssh-rsa AAAA\n"}


@pytest.fixture
async def open_store() -> AsyncIterator[Callable[..., VaultKeyStore]]:
    """Make VaultKeyStores that are closed at the end of the test."""
    made: list[VaultKeyStore] = []

    def make(config: VaultConfig, **options: float) -> VaultKeyStore:
        made.append(VaultKeyStore(config, **options))
        return made[-1]

    yield make
    for store in made:
        await close_keystore(store)


def key_path() -> str:
    return ssh_key_path(str(uuid.uuid4()))


def assert_no_secret(text: str, vault: FakeVault) -> None:
    assert vault.secret_id not in text
    assert "hvs." not in text  # no client or wrapping token


# --- the original's layout -------------------------------------------------------------


async def test_a_key_pair_is_stored_where_and_as_the_original_stores_it(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(vault_server.config())
    key_id = str(uuid.uuid4())
    await store.put(ssh_key_path(key_id), {**PAIR, "cluster": "mn5"})
    document = vault_server.stored(f"secret/data/ssh-credentials/{key_id}")
    assert document["data"] == {**PAIR, "cluster": "mn5"}
    assert document["metadata"]["version"] == 1
    assert ("POST", f"/v1/secret/data/ssh-credentials/{key_id}") in vault_server.requests


async def test_keys_written_by_the_original_are_read_with_json_metadata_as_strings(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    key_id = str(uuid.uuid4())
    original = hvac.Client(url=vault_server.address, token="")
    original.auth.approle.login(role_id=vault_server.role_id, secret_id=vault_server.secret_id)
    # The original writes the metadata it was sent as JSON values next to the two keys.
    original.secrets.kv.v2.create_or_update_secret(
        path=f"ssh-credentials/{key_id}", secret={**PAIR, "nodes": 4, "tags": ["a"]}
    )
    store = open_store(vault_server.config())
    assert await store.get(ssh_key_path(key_id)) == {**PAIR, "nodes": "4", "tags": '["a"]'}


async def test_delete_removes_every_version_so_no_private_key_lingers(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(vault_server.config())
    path = key_path()
    await store.put(path, PAIR)
    await store.put(path, {**PAIR, "privateKey": "rotated"})
    assert vault_server.versions(path) == 2
    await store.delete(path)
    assert vault_server.versions(path) == 0
    assert path not in vault_server.paths()


async def test_paths_that_would_leave_the_key_directory_are_refused(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(vault_server.config())
    for bad in ("ssh-credentials/../other", "", "/ssh-credentials/x", "ssh-credentials//x"):
        with pytest.raises(ValueError, match="invalid key store path"):
            await store.get(bad)


# --- AppRole and tokens ----------------------------------------------------------------


async def test_a_wrapped_secret_id_is_unwrapped_once_and_kept_for_later_logins(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(vault_server.config(wrapped=True))
    path = key_path()
    await store.put(path, PAIR)
    vault_server.revoke_all_tokens()
    assert await store.get(path) == PAIR  # logged in again, without unwrapping again
    assert vault_server.counts["unwrap"] == 1
    assert vault_server.counts["login"] == 2


async def test_a_wrapping_token_already_used_is_refused_with_advice(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    config = vault_server.config(wrapped=True)
    await open_store(config).check()
    with pytest.raises(KeyStoreUnavailable, match="unwrapped only once") as failure:
        await open_store(config).check()
    assert_no_secret(str(failure.value), vault_server)
    assert config.secret_id is not None
    assert config.secret_id.get_secret_value() not in str(failure.value)


async def test_the_store_logs_in_again_after_its_token_is_revoked(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(vault_server.config())
    path = key_path()
    await store.put(path, PAIR)
    vault_server.revoke_all_tokens()
    assert await store.get(path) == PAIR
    vault_server.revoke_all_tokens()
    await store.delete(path)
    assert vault_server.counts["login"] == 3


async def test_concurrent_calls_after_a_revocation_log_in_again_only_once(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(vault_server.config())
    path = key_path()
    await asyncio.gather(*(store.put(path, PAIR) for _ in range(4)))
    vault_server.revoke_all_tokens()
    assert await asyncio.gather(*(store.get(path) for _ in range(8))) == [PAIR] * 8
    assert vault_server.counts["login"] == 2


async def test_the_token_is_renewed_before_it_expires_while_the_store_is_idle(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    vault_server.token_ttl = 2
    store = open_store(vault_server.config())
    path = key_path()
    await store.put(path, PAIR)
    await asyncio.sleep(3.2)  # past the first token's TTL: only a renewal keeps it valid
    assert vault_server.counts["renew"] >= 1
    assert await store.get(path) == PAIR
    assert vault_server.counts["login"] == 1
    assert vault_server.counts["denied"] == 0


async def test_the_token_is_renewed_when_a_call_finds_it_due(
    vault_server: FakeVault,
    open_store: Callable[..., VaultKeyStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vault_server.token_ttl = 2
    store = open_store(vault_server.config())
    monkeypatch.setattr(store, "_ensure_keeper", lambda: None)  # no background renewal
    path = key_path()
    await store.put(path, PAIR)
    for _ in range(6):
        await asyncio.sleep(0.5)
        assert await store.get(path) == PAIR
    assert vault_server.counts["login"] == 1
    assert vault_server.counts["renew"] >= 1
    assert vault_server.counts["denied"] == 0


async def test_a_token_at_its_max_ttl_is_replaced_by_a_new_login(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    vault_server.token_ttl, vault_server.token_max_ttl = 2, 3
    store = open_store(vault_server.config())
    path = key_path()
    await store.put(path, PAIR)
    for _ in range(10):
        await asyncio.sleep(0.5)
        assert await store.get(path) == PAIR
    assert vault_server.counts["login"] >= 2
    assert vault_server.counts["denied"] == 0  # logged in before the old token ran out


async def test_wrong_approle_credentials_are_a_clear_error_without_the_secret(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    config = VaultConfig(
        address=vault_server.address, role_id=vault_server.role_id, secret_id="not-the-secret"
    )
    with pytest.raises(KeyStoreUnavailable, match="refused the AppRole login") as failure:
        await open_store(config).put(key_path(), PAIR)
    assert "not-the-secret" not in str(failure.value)


async def test_a_policy_without_delete_is_named_after_one_fresh_login(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    vault_server.capabilities["secret/metadata/ssh-credentials/*"] = {"read"}
    store = open_store(vault_server.config())
    path = key_path()
    await store.put(path, PAIR)
    with pytest.raises(KeyStoreUnavailable) as failure:
        await store.delete(path)
    message = str(failure.value)
    assert "secret/data/ssh-credentials/*" in message
    assert "delete on secret/metadata/ssh-credentials/*" in message
    assert vault_server.counts["login"] == 2


async def test_paths_outside_the_policy_are_denied(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    with pytest.raises(KeyStoreUnavailable, match="denied access"):
        await open_store(vault_server.config()).put("other/secret", PAIR)


# --- outages ---------------------------------------------------------------------------


async def test_connection_refused_is_unavailable_naming_the_address_then_recovers(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(vault_server.config())
    path = key_path()
    await store.put(path, PAIR)
    vault_server.stop()
    with pytest.raises(KeyStoreUnavailable) as failure:
        await store.get(path)
    message = str(failure.value)
    assert message == f"Vault at {vault_server.address} cannot be reached (connection failed)"
    with pytest.raises(KeyStoreUnavailable):
        await ping(store)
    vault_server.start()
    assert await store.get(path) == PAIR
    await ping(store)


async def test_a_sealed_vault_is_unavailable_then_recovers(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(vault_server.config())
    path = key_path()
    await store.put(path, PAIR)
    vault_server.fail_with(503)
    with pytest.raises(KeyStoreUnavailable, match=r"sealed or unavailable \(HTTP 503\)"):
        await store.get(path)
    vault_server.fail_with(500)
    with pytest.raises(KeyStoreUnavailable, match=r"answered HTTP 500"):
        await store.put(path, PAIR)
    vault_server.fail_with(None)
    assert await store.get(path) == PAIR


async def test_an_outage_before_the_first_login_is_unavailable_too(
    vault_server: FakeVault, open_store: Callable[..., VaultKeyStore]
) -> None:
    vault_server.stop()
    store = open_store(vault_server.config())
    with pytest.raises(KeyStoreUnavailable, match="cannot be reached"):
        await store.put(key_path(), PAIR)
    vault_server.start()
    await store.put(key_path(), PAIR)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


async def test_a_vault_that_does_not_answer_times_out_as_unavailable(
    silent_port: int, open_store: Callable[..., VaultKeyStore]
) -> None:
    config = VaultConfig(address=f"http://127.0.0.1:{silent_port}", role_id="r", secret_id="s")
    with pytest.raises(KeyStoreUnavailable, match=r"did not answer within 0.3 s"):
        await open_store(config, timeout=0.3).get(key_path())


# --- secrets stay secret ---------------------------------------------------------------


async def test_no_secret_is_logged_or_shown_in_repr(
    vault_server: FakeVault,
    open_store: Callable[..., VaultKeyStore],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = vault_server.config(wrapped=True)
    assert config.secret_id is not None
    wrapping_token = config.secret_id.get_secret_value()
    store = open_store(config)
    await store.put(key_path(), PAIR)
    vault_server.revoke_all_tokens()
    await store.put(key_path(), PAIR)
    vault_server.stop()
    with pytest.raises(KeyStoreUnavailable):
        await store.get(key_path())
    text = caplog.text + repr(store) + repr(config)
    assert_no_secret(text, vault_server)
    assert wrapping_token not in text
    assert PAIR["privateKey"] not in text


# --- configuration and the factory -----------------------------------------------------


def test_approle_credentials_are_required() -> None:
    with pytest.raises(ConfigError, match="role_id and secret_id are required"):
        VaultKeyStore(VaultConfig(address="http://127.0.0.1:8200"))


async def test_open_keystore_picks_vault_when_vault_config_is_set(
    vault_server: FakeVault, tmp_path: Path
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'k.sqlite3'}")
    await db.prepare_schema()
    try:
        embedded = open_keystore(Settings(data_dir=tmp_path), db)
        assert isinstance(embedded.inner, EmbeddedKeyStore)  # inside the metrics wrapper
        await ping(embedded)
        await close_keystore(embedded)
        vault = open_keystore(Settings(data_dir=tmp_path, vault_config=vault_server.config()), db)
        assert isinstance(vault.inner, VaultKeyStore)
        assert vault_server.counts["login"] == 0  # nothing contacted before the first use
        await ping(vault)
        assert vault_server.counts["login"] == 1
        await close_keystore(vault)
    finally:
        await db.dispose()
