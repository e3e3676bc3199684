"""What a running server holds: database, catalog, key store, engine, authenticator.

The use cases take it as their first argument; server/runtime.py opens and closes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from hpcwaas.auth.authenticator import Authenticator
from hpcwaas.auth.sso import SingleSignOn
from hpcwaas.catalog.catalog import Catalog
from hpcwaas.catalog.live import LiveCatalog
from hpcwaas.engine.data_removal import DataRemover
from hpcwaas.engine.engine import Engine
from hpcwaas.engine.retention import RetentionSweeper
from hpcwaas.secrets.base import KeyStore
from hpcwaas.settings import Settings
from hpcwaas.store.database import Database


@dataclass
class Runtime:
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
