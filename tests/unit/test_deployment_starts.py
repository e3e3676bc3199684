"""Starting deployments in the store: one per (application, environment) and file, each
audited once, even when triggers race, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from hpcwaas.catalog.catalog import Catalog
from hpcwaas.services.audit import AuditRecorder
from hpcwaas.services.deployments import deploy_if_needed
from hpcwaas.settings import load_settings
from hpcwaas.store.database import Database
from hpcwaas.store.deployments import list_deployments
from hpcwaas.store.tables import audit_events, executions

APP = """\
application: app
environments: [local]
expose: [w]
deployment:
  steps:
    install: {kind: shell, run: "true"}
workflows:
  w:
    steps:
      use: {kind: shell, run: "true"}
"""


async def _deployment_runs(db: Database) -> int:
    async with db.read() as conn:
        query = select(func.count()).where(executions.c.workflow == ".deployment")
        started = int((await conn.execute(query)).scalar_one())
        query = select(func.count()).where(audit_events.c.action == "deployment.run")
        assert int((await conn.execute(query)).scalar_one()) == started
        return started


async def test_triggers_at_once_start_one_deployment_and_a_changed_file_another(
    db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(APP)
    settings = load_settings(None, data_dir=tmp_path / "data")
    catalog = Catalog.load([path], {"local": "Local"})
    workflow = catalog.by_id("app@local@w")
    assert workflow is not None

    async def trigger(catalog: Catalog) -> None:
        async with db.write() as conn:
            await deploy_if_needed(
                conn, settings, catalog, workflow, AuditRecorder(db, "127.0.0.1", None), "ada"
            )

    await asyncio.gather(*(trigger(catalog) for _ in range(4)))
    assert await _deployment_runs(db) == 1
    path.write_text(APP.replace('run: "true"', 'run: "echo v2"', 1))
    changed = Catalog.load([path], {"local": "Local"})
    await asyncio.gather(*(trigger(changed) for _ in range(4)))
    assert await _deployment_runs(db) == 2
    async with db.read() as conn:
        [current] = await list_deployments(conn)
    assert current.definition_digest == changed.deployments[("app", "local")].digest
