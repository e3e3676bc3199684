"""What a running server holds: database, catalog, key store, engine, authenticator."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from hpcwaas.auth.authenticator import Authenticator
from hpcwaas.auth.oidc import OidcClient
from hpcwaas.auth.sso import SingleSignOn
from hpcwaas.catalog.catalog import Catalog
from hpcwaas.catalog.live import LiveCatalog
from hpcwaas.engine.data_removal import DataRemover
from hpcwaas.engine.engine import Engine
from hpcwaas.engine.retention import RetentionSweeper
from hpcwaas.secrets.base import KeyStore
from hpcwaas.secrets.factory import close_keystore, open_keystore
from hpcwaas.settings import Settings
from hpcwaas.store.database import Database

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    live_catalog: LiveCatalog
    keystore: KeyStore
    engine: Engine
    authenticator: Authenticator
    sso: SingleSignOn | None = None
    http: httpx.AsyncClient | None = None  # to the identity provider
    # removes finished executions' data: on request, and by the retention sweep
    data_remover: DataRemover | None = None
    retention: RetentionSweeper | None = None

    @property
    def catalog(self) -> Catalog:
        """The catalog now; read it once per request, a reload may swap it at any time."""
        return self.live_catalog.current


def open_database(settings: Settings) -> Database:
    """The database of ``settings`` with its pool settings (they apply to PostgreSQL)."""
    return Database(
        settings.effective_database_url,
        pool_size=settings.database_pool_size,
        connect_timeout=settings.database_connect_timeout_seconds,
    )


def load_catalog(settings: Settings) -> Catalog:
    names = {env_id: env.name or env_id for env_id, env in settings.environments.items()}
    kinds = {env_id: env.kind for env_id, env in settings.environments.items()}
    hosts = {
        env_id: env.host for env_id, env in settings.environments.items() if hasattr(env, "host")
    }
    catalog = Catalog.load(list(settings.catalog_dirs), names, kinds, hosts)
    log.info("catalog: %d workflows from %s", len(catalog.workflows), settings.catalog_dirs)
    return catalog


async def start_services(settings: Settings) -> Services:
    """Open everything in order; on failure, close what was opened and re-raise."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = open_database(settings)
    http: httpx.AsyncClient | None = None
    try:
        outcome = await db.prepare_schema()
        log.info("database %s", outcome)
        keystore = open_keystore(settings, db)
        live = LiveCatalog(lambda: load_catalog(settings), list(settings.catalog_dirs))
        sso = None
        if settings.auth.auth_type == "sso":
            http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
            sso = SingleSignOn(settings.auth, db, OidcClient(settings.auth, http))
        # The engine runs what was authorized at trigger: it looks workflows up by ID alone,
        # in the definition the execution was triggered with when the catalog was reloaded since.
        engine = Engine(db, settings, live.by_id, keystore=keystore, definitions=live.definition)
        remover = DataRemover(db, settings, keystore)
        retention = RetentionSweeper(db, settings, remover)
        services = Services(
            settings=settings,
            db=db,
            live_catalog=live,
            keystore=keystore,
            engine=engine,
            authenticator=Authenticator(settings, db, sso),
            sso=sso,
            http=http,
            data_remover=remover,
            retention=retention,
        )
        await engine.start()
        retention.start()
    except BaseException:
        if http is not None:
            await http.aclose()
        await db.dispose()
        raise
    return services


async def stop_services(services: Services) -> None:
    if services.retention is not None:
        await services.retention.stop()
    await services.engine.stop()
    if services.data_remover is not None:
        await services.data_remover.close()
    await close_keystore(services.keystore)
    if services.http is not None:
        await services.http.aclose()
    await services.db.dispose()
