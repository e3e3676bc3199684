"""The remote services of each environment (its ``airflow:``), one driver per service.

Drivers are made at first use and shared: every environment that names the same Airflow
(URL and credentials) shares one driver, so that all its runs are polled together.
"""

from __future__ import annotations

import asyncio

from hpcwaas.engine.airflow import AirflowService
from hpcwaas.engine.airflow_api import AirflowApi
from hpcwaas.engine.remotesteps import RemoteError, RemoteService
from hpcwaas.secrets.base import KeyStore, KeyStoreUnavailable
from hpcwaas.settings import AirflowConfig, Settings, SlurmEnvironment


class RemoteServices:
    """Finds the driver of a service for an environment; closes them all at the end."""

    def __init__(self, settings: Settings, keystore: KeyStore | None) -> None:
        self._settings = settings
        self._keystore = keystore
        self._airflows: dict[tuple[str, str], AirflowService] = {}
        self._lock = asyncio.Lock()

    async def lookup(self, environment: str, service: str) -> RemoteService:
        """The driver of ``service`` for ``environment``; RemoteError when there is none."""
        config = self._settings.environments.get(environment)
        airflow = config.airflow if isinstance(config, SlurmEnvironment) else None
        if service != "airflow" or airflow is None:
            raise RemoteError(
                f"environment {environment!r} has no {service}: setting; an operator adds it "
                "to the environment in the server's configuration",
                retryable=False,
            )
        return await self._airflow(airflow)

    async def _airflow(self, config: AirflowConfig) -> AirflowService:
        key = (config.url.rstrip("/"), config.credentials)
        async with self._lock:
            if key not in self._airflows:
                username, password = await self._credentials(config)
                self._airflows[key] = AirflowService(config, AirflowApi(config, username, password))
            return self._airflows[key]

    async def _credentials(self, config: AirflowConfig) -> tuple[str, str]:
        path = config.credentials
        if self._keystore is None:
            raise RemoteError("no key store holds the Airflow's credentials", retryable=False)
        try:
            entry = await self._keystore.get(path)
        except KeyStoreUnavailable as exc:
            raise RemoteError(f"the key store cannot be read: {exc}", retryable=True) from None
        if not entry or not entry.get("username") or not entry.get("password"):
            raise RemoteError(
                f"the key store has no username and password at {path!r} for the Airflow at "
                f"{config.url}; an operator adds them with `hpcwaas-api secrets put {path} "
                "username` and `... password`",
                retryable=False,
            )
        return entry["username"], entry["password"]

    async def aclose(self) -> None:
        for airflow in self._airflows.values():
            await airflow.aclose()
        self._airflows.clear()
