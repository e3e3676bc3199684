"""The server's catalog watcher and reloads, on a real directory and a real SQLite database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hpcwaas.catalog.catalog import Catalog
from hpcwaas.catalog.live import LiveCatalog
from hpcwaas.server.catalog_reload import CatalogReloader
from hpcwaas.store.database import Database

LOCAL = {"local": "Local host"}
APP = """\
application: {name}
environments: [local]
expose: [wf]
workflows:
  wf:
    steps:
      only: {{kind: shell, run: echo hi}}
"""


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'hpcwaas.sqlite3'}")
    await database.prepare_schema()
    yield database
    await database.dispose()


async def _eventually(live: LiveCatalog, ids: set[str], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while set(live.current.workflows) != ids:
        assert time.monotonic() < deadline, f"catalog still {set(live.current.workflows)}"
        await asyncio.sleep(0.02)


async def test_the_watcher_loads_a_new_file_once_it_stops_changing(
    tmp_path: Path, db: Database
) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    live = LiveCatalog(lambda: Catalog.load([catalog], LOCAL), [catalog])
    reloader = CatalogReloader(live, db, watch_seconds=0.05)
    reloader.start()
    try:
        (catalog / "a.yaml").write_text(APP.format(name="a"))
        await _eventually(live, {"a@local@wf"})
        assert live.generation == 2  # one reload for one change
        (catalog / "a.yaml").unlink()
        await _eventually(live, set())
    finally:
        await reloader.stop()


async def test_a_reload_that_fails_keeps_the_previous_catalog(tmp_path: Path, db: Database) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "a.yaml").write_text(APP.format(name="a"))
    loads = [0]

    def load() -> Catalog:
        loads[0] += 1
        if loads[0] > 1:
            raise OSError("the disk went away")
        return Catalog.load([catalog], LOCAL)

    live = LiveCatalog(load, [catalog])
    reloader = CatalogReloader(live, db, watch_seconds=0)
    assert await reloader.reload("test") is None
    assert set(live.current.workflows) == {"a@local@wf"}


async def test_no_watching_when_the_interval_is_zero(tmp_path: Path, db: Database) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    live = LiveCatalog(lambda: Catalog.load([catalog], LOCAL), [catalog])
    reloader = CatalogReloader(live, db, watch_seconds=0)
    reloader.start()
    (catalog / "a.yaml").write_text(APP.format(name="a"))
    await asyncio.sleep(0.3)
    assert live.current.workflows == {}
    await reloader.stop()
