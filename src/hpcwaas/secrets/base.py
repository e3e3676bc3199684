"""The key store interface: a small map from paths to string dictionaries."""

from __future__ import annotations

from typing import Protocol


class KeyStoreUnavailable(Exception):
    """The key store cannot be reached or used right now; retrying later may help."""


class KeyStore(Protocol):
    """Secrets by path (the original's layout: ``ssh-credentials/<key id>``)."""

    async def put(self, path: str, data: dict[str, str]) -> None: ...

    async def get(self, path: str) -> dict[str, str] | None: ...

    async def delete(self, path: str) -> None: ...


def ssh_key_path(key_id: str) -> str:
    """Where the original keeps a generated key pair."""
    return f"ssh-credentials/{key_id}"
