"""The remote services of each environment (its ``airflow:`` and ``image_creation:``).

Drivers are made at first use and shared: every environment that names the same Airflow
(URL and credentials) shares one driver, so that all its runs are polled together; likewise
for an Image Creation service account.
"""

from __future__ import annotations

import asyncio
import ssl

from hpcwaas.engine.airflow import AirflowService
from hpcwaas.engine.airflow_api import AirflowApi
from hpcwaas.engine.image_creation import ImageCreationService, tls_verify
from hpcwaas.engine.remotesteps import RemoteError, RemoteService
from hpcwaas.secrets.base import KeyStore, KeyStoreUnavailable
from hpcwaas.settings import AirflowConfig, ImageCreationConfig, Settings, SlurmEnvironment


class RemoteServices:
    """Finds the driver of a service for an environment; closes them all at the end."""

    def __init__(self, settings: Settings, keystore: KeyStore | None) -> None:
        self._settings = settings
        self._keystore = keystore
        self._airflows: dict[tuple[str, str], AirflowService] = {}
        self._image_services: dict[str, ImageCreationService] = {}
        self._lock = asyncio.Lock()

    def configured(self, environment: str, service: str) -> bool:
        """Whether ``environment`` has a setting for ``service`` (``airflow``)."""
        config = self._settings.environments.get(environment)
        if not isinstance(config, SlurmEnvironment):
            return False
        return {"airflow": config.airflow, "image_creation": config.image_creation}.get(
            service
        ) is not None

    def verify(self, environment: str, service: str) -> ssl.SSLContext | bool:
        """How to check the certificate of ``service`` (``image_creation``) when downloading
        from it: its environment's TLS settings, else the system's CAs."""
        config = self._settings.environments.get(environment)
        if isinstance(config, SlurmEnvironment) and service == "image_creation":
            if config.image_creation is not None:
                return tls_verify(config.image_creation)
        return True

    async def lookup(self, environment: str, service: str) -> RemoteService:
        """The driver of ``service`` for ``environment``; RemoteError when there is none."""
        config = self._settings.environments.get(environment)
        cluster = config if isinstance(config, SlurmEnvironment) else None
        if service == "airflow" and cluster is not None and cluster.airflow is not None:
            return await self._airflow(cluster.airflow)
        if service == "image_creation" and cluster is not None:
            if cluster.image_creation is not None:
                return await self._image_service(cluster.image_creation)
        raise RemoteError(
            f"environment {environment!r} has no {service}: setting; an operator adds it "
            "to the environment in the server's configuration",
            retryable=False,
        )

    async def _airflow(self, config: AirflowConfig) -> AirflowService:
        key = (config.url.rstrip("/"), config.credentials)
        async with self._lock:
            if key not in self._airflows:
                what = f"the Airflow at {config.url}"
                username, password = await self._credentials(config.credentials, what)
                self._airflows[key] = AirflowService(config, AirflowApi(config, username, password))
            return self._airflows[key]

    async def _image_service(self, config: ImageCreationConfig) -> ImageCreationService:
        key = config.model_dump_json()  # one driver per service, account and TLS options
        async with self._lock:
            if key not in self._image_services:
                where = config.url or "the steps' service_url"
                what = f"the Image Creation service at {where}"
                username, password = await self._credentials(config.credentials, what)
                self._image_services[key] = ImageCreationService(config, username, password)
            return self._image_services[key]

    async def _credentials(self, path: str, what: str) -> tuple[str, str]:
        """The username and password the key store holds at ``path`` for ``what``."""
        if self._keystore is None:
            raise RemoteError(f"no key store holds the credentials of {what}", retryable=False)
        try:
            entry = await self._keystore.get(path)
        except KeyStoreUnavailable as exc:
            raise RemoteError(f"the key store cannot be read: {exc}", retryable=True) from None
        if not entry or not entry.get("username") or not entry.get("password"):
            raise RemoteError(
                f"the key store has no username and password at {path!r} for {what}; "
                f"an operator adds them with `hpcwaas-api secrets put {path} "
                "username` and `... password`",
                retryable=False,
            )
        return entry["username"], entry["password"]

    async def aclose(self) -> None:
        for airflow in self._airflows.values():
            await airflow.aclose()
        self._airflows.clear()
        for image_service in self._image_services.values():
            await image_service.aclose()
        self._image_services.clear()
