"""Opening and closing the Runtime of a running server (services/runtime.py), in order."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx

from hpcwaas.auth.authenticator import Authenticator
from hpcwaas.auth.oidc import OidcClient
from hpcwaas.auth.sso import SingleSignOn
from hpcwaas.catalog.catalog import Catalog
from hpcwaas.catalog.live import LiveCatalog
from hpcwaas.engine.data_removal import DataRemover
from hpcwaas.engine.engine import Engine
from hpcwaas.engine.retention import RetentionSweeper
from hpcwaas.secrets.factory import close_keystore, open_keystore
from hpcwaas.services.runtime import Runtime
from hpcwaas.settings import Settings
from hpcwaas.store.database import Database

log = logging.getLogger(__name__)


def open_database(settings: Settings) -> Database:
    """The database of ``settings`` with its pool settings (they apply to PostgreSQL)."""
    return Database(
        settings.effective_database_url,
        pool_size=settings.database_pool_size,
        connect_timeout=settings.database_connect_timeout_seconds,
    )


def catalog_for(settings: Settings, dirs: list[Path]) -> Catalog:
    """The workflows of ``dirs`` deployed on the environments of ``settings``."""
    environments = settings.environments
    return Catalog.load(
        dirs,
        {env_id: env.name or env_id for env_id, env in environments.items()},
        {env_id: env.kind for env_id, env in environments.items()},
        {env_id: env.host for env_id, env in environments.items() if hasattr(env, "host")},
        {env_id: env.services() for env_id, env in environments.items()},
    )


def load_catalog(settings: Settings) -> Catalog:
    """The workflows of the configured catalog directories, for the configured environments."""
    catalog = catalog_for(settings, list(settings.catalog_dirs))
    log.info("catalog: %d workflows from %s", len(catalog.workflows), settings.catalog_dirs)
    return catalog


async def start_runtime(settings: Settings) -> Runtime:
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
        engine = Engine(db, settings, live.runnable, keystore=keystore, definitions=live.definition)
        remover = DataRemover(db, settings, keystore)
        retention = RetentionSweeper(db, settings, remover)
        runtime = Runtime(
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
    return runtime


async def stop_runtime(runtime: Runtime) -> None:
    """Stop and close what ``start_runtime`` opened, the engine before the database."""
    if runtime.retention is not None:
        await runtime.retention.stop()
    await runtime.engine.stop()
    if runtime.data_remover is not None:
        await runtime.data_remover.close()
    await close_keystore(runtime.keystore)
    if runtime.http is not None:
        await runtime.http.aclose()
    await runtime.db.dispose()
