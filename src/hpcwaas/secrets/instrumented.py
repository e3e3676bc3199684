"""A key store wrapper counting calls and errors per operation for Prometheus."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from hpcwaas import telemetry as metrics
from hpcwaas.secrets.base import KeyStore

T = TypeVar("T")


class InstrumentedKeyStore:
    """``inner`` with ``hpcwaas_key_store_calls_total``/``..._errors_total`` per operation.

    ``check()`` and ``aclose()`` pass through to ``inner`` when it has them (a no-op else),
    so ``factory.ping`` and ``factory.close_keystore`` keep working on the wrapper.
    """

    def __init__(self, inner: KeyStore) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"InstrumentedKeyStore({self.inner!r})"

    async def _counted(self, operation: str, call: Awaitable[T]) -> T:
        metrics.KEY_STORE_CALLS.labels(operation=operation).inc()
        try:
            return await call
        except BaseException:
            metrics.KEY_STORE_ERRORS.labels(operation=operation).inc()
            raise

    async def put(self, path: str, data: dict[str, str]) -> None:
        await self._counted("put", self.inner.put(path, data))

    async def get(self, path: str) -> dict[str, str] | None:
        return await self._counted("get", self.inner.get(path))

    async def delete(self, path: str) -> None:
        await self._counted("delete", self.inner.delete(path))

    async def check(self) -> None:
        from hpcwaas.secrets.factory import ping

        await ping(self.inner)

    async def aclose(self) -> None:
        from hpcwaas.secrets.factory import close_keystore

        await close_keystore(self.inner)
