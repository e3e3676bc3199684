"""Which key store a server uses: the embedded one, or HashiCorp Vault when vault_config is set."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from hpcwaas.secrets.base import KeyStore
from hpcwaas.secrets.embedded import EmbeddedKeyStore, load_or_create_master_key
from hpcwaas.secrets.instrumented import InstrumentedKeyStore
from hpcwaas.settings import Settings
from hpcwaas.store.database import Database

log = logging.getLogger(__name__)


@runtime_checkable
class CheckableKeyStore(Protocol):
    async def check(self) -> None: ...


@runtime_checkable
class ClosableKeyStore(Protocol):
    async def aclose(self) -> None: ...


def open_keystore(settings: Settings, db: Database) -> KeyStore:
    """The configured key store, counted for /metrics (wrapped in InstrumentedKeyStore).

    Vault is not contacted here: the first use (or ping) logs in.

    Raise ConfigError for an unusable vault_config, KeyStoreUnavailable for a bad master key.
    """
    if settings.vault_config is None:
        log.info("key store: embedded (master key %s)", settings.master_key_path)
        embedded = EmbeddedKeyStore(db, load_or_create_master_key(settings.master_key_path))
        return InstrumentedKeyStore(embedded)
    from hpcwaas.secrets.vault import VaultKeyStore  # hvac is needed only then

    store = VaultKeyStore(settings.vault_config)
    log.info(
        "key store: HashiCorp Vault at %s (AppRole%s)",
        store.address,
        ", wrapped secret ID" if settings.vault_config.is_secret_wrapped else "",
    )
    return InstrumentedKeyStore(store)


async def ping(store: KeyStore) -> None:
    """Raise KeyStoreUnavailable (with a message fit for /readyz) unless the store works."""
    if isinstance(store, CheckableKeyStore):
        await store.check()


async def close_keystore(store: KeyStore) -> None:
    """Release what the store holds (Vault: the token renewal task and HTTP session)."""
    if isinstance(store, ClosableKeyStore):
        await store.aclose()
