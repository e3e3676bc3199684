"""The Vault key store against a real OpenBao server: layout, AppRole, tokens, policies, outages.

The servers come from tests/openbao_support.py (``openbao``: in memory; ``make_openbao(
persistent=True)``: raft storage, for the tests that stop and start the server).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import hvac
import pytest
from tests.openbao_support import OpenBao, OpenBaoError

from hpcwaas.secrets.base import KeyStoreUnavailable, ssh_key_path
from hpcwaas.secrets.embedded import EmbeddedKeyStore
from hpcwaas.secrets.factory import close_keystore, open_keystore, ping
from hpcwaas.secrets.vault import VaultKeyStore
from hpcwaas.settings import ConfigError, Settings, VaultConfig
from hpcwaas.store.database import Database

PAIR = {"privateKey": "-----BEGIN RSA PRIVATE KEY-----\nx\n", "publicKey": "ssh-rsa AAAA\n"}
TOKEN = re.compile(r"\bs\.[A-Za-z0-9]{24}\b")  # an OpenBao service token


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


def config(bao: OpenBao, role: str = "hpcwaas", *, wrapped: bool = False) -> VaultConfig:
    """A vault_config logging in with the AppRole ``role`` (a fresh secret ID, maybe wrapped)."""
    return VaultConfig(**bao.hpcwaas_config(role, wrapped=wrapped))


def key_path() -> str:
    return ssh_key_path(str(uuid.uuid4()))


def logins(bao: OpenBao) -> int:
    return len(bao.requests("auth/approle/login"))


# --- the original's layout -------------------------------------------------------------


async def test_a_key_pair_is_stored_where_and_as_the_original_stores_it(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(config(openbao))
    key_id = str(uuid.uuid4())
    await store.put(ssh_key_path(key_id), {**PAIR, "cluster": "mn5"})
    assert openbao.requests(f"secret/data/ssh-credentials/{key_id}") == ["create"]
    document = openbao.kv_read(f"ssh-credentials/{key_id}")
    assert document["data"] == {**PAIR, "cluster": "mn5"}
    assert document["metadata"]["version"] == 1


async def test_keys_written_by_the_original_are_read_with_json_metadata_as_strings(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    key_id = str(uuid.uuid4())
    original = hvac.Client(url=openbao.address, token="")
    original.auth.approle.login(
        role_id=openbao.role_id("hpcwaas"), secret_id=openbao.secret_id("hpcwaas")
    )
    # The original writes the metadata it was sent as JSON values next to the two keys.
    original.secrets.kv.v2.create_or_update_secret(
        path=f"ssh-credentials/{key_id}", secret={**PAIR, "nodes": 4, "tags": ["a"]}
    )
    store = open_store(config(openbao))
    assert await store.get(ssh_key_path(key_id)) == {**PAIR, "nodes": "4", "tags": '["a"]'}


async def test_delete_removes_every_version_so_no_private_key_lingers(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(config(openbao))
    path = key_path()
    await store.put(path, PAIR)
    await store.put(path, {**PAIR, "privateKey": "rotated"})
    assert openbao.kv_versions(path) == 2
    await store.delete(path)
    assert openbao.kv_versions(path) == 0
    assert await store.get(path) is None


async def test_paths_that_would_leave_the_key_directory_are_refused(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(config(openbao))
    for bad in ("ssh-credentials/../other", "", "/ssh-credentials/x", "ssh-credentials//x"):
        with pytest.raises(ValueError, match="invalid key store path"):
            await store.get(bad)


# --- AppRole and tokens ----------------------------------------------------------------


async def test_a_wrapped_secret_id_is_unwrapped_once_and_kept_for_later_logins(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(config(openbao, wrapped=True))
    path = key_path()
    await store.put(path, PAIR)
    openbao.revoke_logins()
    assert await store.get(path) == PAIR  # logged in again, without unwrapping again
    assert len(openbao.requests("sys/wrapping/unwrap")) == 1
    assert logins(openbao) == 2


async def test_a_wrapping_token_already_used_is_refused_with_advice(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    wrapped = config(openbao, wrapped=True)
    await open_store(wrapped).check()
    with pytest.raises(KeyStoreUnavailable, match="unwrapped only once") as failure:
        await open_store(wrapped).check()
    assert wrapped.secret_id is not None
    assert wrapped.secret_id.get_secret_value() not in str(failure.value)
    assert not TOKEN.search(str(failure.value))


async def test_the_store_logs_in_again_after_its_token_is_revoked(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(config(openbao))
    path = key_path()
    await store.put(path, PAIR)
    openbao.revoke_logins()
    assert await store.get(path) == PAIR
    openbao.revoke_logins()
    await store.delete(path)
    assert logins(openbao) == 3


async def test_concurrent_calls_after_a_revocation_log_in_again_only_once(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(config(openbao))
    path = key_path()
    await asyncio.gather(*(store.put(path, PAIR) for _ in range(4)))
    openbao.revoke_logins()
    assert await asyncio.gather(*(store.get(path) for _ in range(8))) == [PAIR] * 8
    assert logins(openbao) == 2


async def test_the_token_is_renewed_before_it_expires_while_the_store_is_idle(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    openbao.approle("short", ["hpcwaas"], token_ttl="2s", token_max_ttl="1h")
    store = open_store(config(openbao, "short"))
    path = key_path()
    await store.put(path, PAIR)
    await asyncio.sleep(3.2)  # past the first token's TTL: only a renewal keeps it valid
    assert len(openbao.requests("auth/token/renew-self")) >= 1
    assert await store.get(path) == PAIR
    assert logins(openbao) == 1
    assert openbao.denials() == 0


async def test_the_token_is_renewed_when_a_call_finds_it_due(
    openbao: OpenBao,
    open_store: Callable[..., VaultKeyStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    openbao.approle("short", ["hpcwaas"], token_ttl="2s", token_max_ttl="1h")
    store = open_store(config(openbao, "short"))
    monkeypatch.setattr(store, "_ensure_keeper", lambda: None)  # no background renewal
    path = key_path()
    await store.put(path, PAIR)
    for _ in range(6):
        await asyncio.sleep(0.5)
        assert await store.get(path) == PAIR
    assert logins(openbao) == 1
    assert len(openbao.requests("auth/token/renew-self")) >= 1
    assert openbao.denials() == 0


async def test_a_token_at_its_max_ttl_is_replaced_by_a_new_login(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    openbao.approle("short", ["hpcwaas"], token_ttl="2s", token_max_ttl="3s")
    store = open_store(config(openbao, "short"))
    path = key_path()
    await store.put(path, PAIR)
    for _ in range(10):
        await asyncio.sleep(0.5)
        assert await store.get(path) == PAIR
    assert logins(openbao) >= 2
    assert openbao.denials() == 0  # logged in before the old token ran out


async def test_wrong_approle_credentials_are_a_clear_error_without_the_secret(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    wrong = VaultConfig(
        address=openbao.address, role_id=openbao.role_id("hpcwaas"), secret_id="not-the-secret"
    )
    with pytest.raises(KeyStoreUnavailable, match=r"refused the AppRole login \(HTTP 400\)") as e:
        await open_store(wrong).put(key_path(), PAIR)
    assert "not-the-secret" not in str(e.value)


async def test_a_secret_id_out_of_uses_is_a_clear_error_at_the_next_login(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    openbao.approle("once", ["hpcwaas"], secret_id_num_uses=1)
    store = open_store(config(openbao, "once"))
    await store.put(key_path(), PAIR)
    openbao.revoke_logins()
    with pytest.raises(KeyStoreUnavailable, match="can expire or run out of uses"):
        await store.put(key_path(), PAIR)


# --- policies --------------------------------------------------------------------------

DATA, METADATA = "secret/data/ssh-credentials/*", "secret/metadata/ssh-credentials/*"


def _policy(data: list[str], metadata: list[str]) -> str:
    quoted = [", ".join(f'"{c}"' for c in caps) for caps in (data, metadata)]
    return (
        f'path "{DATA}" {{\n  capabilities = [{quoted[0]}]\n}}\n'
        f'path "{METADATA}" {{\n  capabilities = [{quoted[1]}]\n}}\n'
    )


@pytest.mark.parametrize(
    ("data", "metadata", "operation", "needed"),
    [
        (["read", "update", "delete"], ["delete"], "put", f"create and update on {DATA}"),
        (["create", "update", "delete"], ["delete"], "get", f"read on {DATA}"),
        (["create", "update", "read"], ["read"], "delete", f"delete on {METADATA}"),
    ],
    ids=["without-create", "without-read", "without-metadata-delete"],
)
async def test_a_policy_missing_a_capability_is_named_after_one_fresh_login(
    openbao: OpenBao,
    open_store: Callable[..., VaultKeyStore],
    data: list[str],
    metadata: list[str],
    operation: str,
    needed: str,
) -> None:
    openbao.policy("partial", _policy(data, metadata))
    openbao.approle("partial", ["partial"])
    path = key_path()
    if operation != "put":  # a key to read or delete (a put on it would be an update)
        openbao.api("POST", f"secret/data/{path}", {"data": PAIR})
    store = open_store(config(openbao, "partial"))
    call = {
        "put": lambda: store.put(path, PAIR),
        "get": lambda: store.get(path),
        "delete": lambda: store.delete(path),
    }[operation]
    with pytest.raises(KeyStoreUnavailable) as failure:
        await call()
    assert str(failure.value) == (
        f"Vault at {openbao.address} denied access with a fresh AppRole token: "
        f"its policy must allow {needed}"
    )
    assert logins(openbao) == 2  # the first token might have been revoked: one retry


async def test_paths_outside_the_policy_are_denied_naming_the_path(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    needed = "its policy must allow create and update on secret/data/apps/portal/*"
    with pytest.raises(KeyStoreUnavailable, match=re.escape(needed)):
        await open_store(config(openbao)).put("apps/portal/api", {"token": "t"})


async def test_a_role_without_the_policy_is_told_what_its_policy_needs(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    openbao.approle("bare", ["default"])
    with pytest.raises(KeyStoreUnavailable) as failure:
        await open_store(config(openbao, "bare")).put(key_path(), PAIR)
    assert "its policy grants nothing under secret/" in str(failure.value)
    assert f"create, update, read and delete on {DATA}" in str(failure.value)


@pytest.mark.parametrize(
    ("engine", "found"),
    [(None, "shows the AppRole no secrets engine at secret/"), ("1", "has KV version 1")],
    ids=["no-engine", "kv-version-1"],
)
async def test_a_vault_without_kv_version_2_at_secret_is_refused_before_any_write(
    openbao: OpenBao,
    open_store: Callable[..., VaultKeyStore],
    engine: str | None,
    found: str,
) -> None:
    openbao.api("DELETE", "sys/mounts/secret")
    if engine is not None:
        openbao.api("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": engine}})
    path = key_path()
    with pytest.raises(KeyStoreUnavailable) as failure:
        await open_store(config(openbao)).put(path, PAIR)
    assert str(failure.value).startswith(f"Vault at {openbao.address} {found}")
    assert "vault secrets enable -path=secret kv-v2" in str(failure.value)
    if engine is not None:  # nothing written, at any path
        with pytest.raises(OpenBaoError) as listing:
            openbao.api("LIST", "secret/")
        assert listing.value.status == 404


# --- outages ---------------------------------------------------------------------------


async def test_connection_refused_is_unavailable_naming_the_address_then_recovers(
    make_openbao: Callable[..., OpenBao], open_store: Callable[..., VaultKeyStore]
) -> None:
    bao = make_openbao(persistent=True)
    store = open_store(config(bao))
    path = key_path()
    await store.put(path, PAIR)
    bao.stop()
    with pytest.raises(KeyStoreUnavailable) as failure:
        await store.get(path)
    assert str(failure.value) == f"Vault at {bao.address} cannot be reached (connection failed)"
    with pytest.raises(KeyStoreUnavailable):
        await ping(store)
    bao.start()  # the same storage, unsealed
    assert await store.get(path) == PAIR
    await ping(store)


async def test_a_sealed_vault_is_unavailable_then_recovers(
    openbao: OpenBao, open_store: Callable[..., VaultKeyStore]
) -> None:
    store = open_store(config(openbao))
    path = key_path()
    await store.put(path, PAIR)
    openbao.seal()
    with pytest.raises(KeyStoreUnavailable, match=r"sealed or unavailable \(HTTP 503\)"):
        await store.get(path)
    with pytest.raises(KeyStoreUnavailable, match=r"sealed or unavailable \(HTTP 503\)"):
        await store.put(path, PAIR)
    openbao.unseal()
    assert await store.get(path) == PAIR


async def test_an_outage_before_the_first_login_is_unavailable_too(
    make_openbao: Callable[..., OpenBao], open_store: Callable[..., VaultKeyStore]
) -> None:
    bao = make_openbao(persistent=True)
    store = open_store(config(bao))
    bao.stop()
    with pytest.raises(KeyStoreUnavailable, match="cannot be reached"):
        await store.put(key_path(), PAIR)
    bao.start()
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
    silent = VaultConfig(address=f"http://127.0.0.1:{silent_port}", role_id="r", secret_id="s")
    with pytest.raises(KeyStoreUnavailable, match=r"did not answer within 0.3 s"):
        await open_store(silent, timeout=0.3).get(key_path())


# --- secrets stay secret ---------------------------------------------------------------


async def test_no_secret_is_logged_or_shown_in_repr(
    openbao: OpenBao,
    open_store: Callable[..., VaultKeyStore],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrapped = config(openbao, wrapped=True)
    assert wrapped.secret_id is not None
    wrapping_token = wrapped.secret_id.get_secret_value()
    store = open_store(wrapped)
    await store.put(key_path(), PAIR)
    openbao.revoke_logins()
    await store.put(key_path(), PAIR)
    openbao.stop()
    with pytest.raises(KeyStoreUnavailable):
        await store.get(key_path())
    text = caplog.text + repr(store) + repr(wrapped)
    assert wrapping_token not in text
    assert not TOKEN.search(text)  # no client token
    assert PAIR["privateKey"] not in text


# --- configuration and the factory -----------------------------------------------------


def test_approle_credentials_are_required() -> None:
    with pytest.raises(ConfigError, match="role_id and secret_id are required"):
        VaultKeyStore(VaultConfig(address="http://127.0.0.1:8200"))


async def test_open_keystore_picks_vault_when_vault_config_is_set(
    openbao: OpenBao, tmp_path: Path
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'k.sqlite3'}")
    await db.prepare_schema()
    try:
        embedded = open_keystore(Settings(data_dir=tmp_path), db)
        assert isinstance(embedded.inner, EmbeddedKeyStore)  # inside the metrics wrapper
        await ping(embedded)
        await close_keystore(embedded)
        vault = open_keystore(Settings(data_dir=tmp_path, vault_config=config(openbao)), db)
        assert isinstance(vault.inner, VaultKeyStore)
        assert logins(openbao) == 0  # nothing contacted before the first use
        await ping(vault)
        assert logins(openbao) == 1
        await close_keystore(vault)
    finally:
        await db.dispose()
