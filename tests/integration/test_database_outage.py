"""A PostgreSQL outage longer than the leases: the replica's running steps go on and are
recorded once the database is back; only a real takeover stops them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer, free_port, trigger, wait_for_status
from tests.pg_support import Postgres

LEASE_SECONDS = 3
LINES = 6  # the step ends during the outage: its end waits to be recorded

COUNTER = f"""
application: outage
environments: [local]
expose: [count]
workflows:
  count:
    steps:
      count:
        kind: shell
        run: 'for i in $(seq 1 {LINES}); do echo "line $i"; sleep 1; done'
      after:
        kind: shell
        needs: [count]
        run: echo after the outage
"""


@pytest.fixture
def server(tmp_path: Path, postgres: Postgres) -> Iterator[LiveServer]:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "outage.yaml").write_text(COUNTER)
    live = LiveServer(tmp_path / "data", free_port(), database_url=postgres.new_database())
    live.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
    live.env["HPCWAAS_LEASE_SECONDS"] = str(LEASE_SECONDS)
    live.start()
    yield live
    live.stop()


def _messages(api: httpx.Client, execution_id: str) -> list[str]:
    body = api.get(f"/executions/{execution_id}/logs", params={"size": 1000}).json()
    return [entry["content"] for entry in body["logs"]]


def test_an_outage_longer_than_the_leases_delays_recording_and_kills_nothing(
    server: LiveServer, postgres: Postgres
) -> None:
    with server.client(server.token("patient")) as api:
        execution_id = trigger(api, "outage@local@count")
        wait_for_status(api, execution_id, {"RUNNING"})
        time.sleep(1.5)  # a few lines are written before the outage
        postgres.stop()
        try:
            time.sleep(3 * LEASE_SECONDS)  # the leases lapse while the step goes on
            assert server.process is not None and server.process.poll() is None
        finally:
            postgres.start()
        body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"}, timeout=60)
        messages = _messages(api, execution_id)
        assert body["status"] == "SUCCEEDED", (body, messages)
        # Every line the step printed during the outage was held and written afterwards.
        printed = [m for m in messages if m.startswith("line ")]
        assert printed == [f"line {i}" for i in range(1, LINES + 1)], messages
        assert "after the outage" in messages
        waited = [m for m in messages if "database cannot be reached" in m]
        assert len(waited) == 1, messages
        assert not [m for m in messages if "stopped" in m or "killed" in m], messages
