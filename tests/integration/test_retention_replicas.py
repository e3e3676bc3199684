"""Retention with two replicas on one real PostgreSQL: both sweep often, one at a time through
the `retention` lease, so each execution's data is removed exactly once."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import LiveServer, free_port, wait_for_status
from tests.pg_support import Postgres

CATALOG = """
application: keep
environments: [local]
expose: [report]
workflows:
  report:
    steps:
      write:
        kind: shell
        run: mkdir -p out && echo hello > out/report.txt && echo written
      keep:
        kind: stage_out
        needs: [write]
        source_path: out/report.txt
        output: report
"""
RETENTION = {
    "work_dirs": "2s",
    "logs": "2s",
    "outputs": "2s",
    "sweep_interval_seconds": 0.2,
}


@pytest.fixture
def replicas(tmp_path: Path, postgres: Postgres) -> Iterator[list[LiveServer]]:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "keep.yaml").write_text(CATALOG)
    database_url = postgres.new_database()
    servers = []
    for _ in range(2):
        # one data directory for both, as replicas share their result store
        server = LiveServer(tmp_path / "data", free_port(), database_url=database_url)
        server.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
        server.env["HPCWAAS_RETENTION"] = json.dumps(RETENTION)
        servers.append(server)
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_two_replicas_remove_each_executions_data_exactly_once(
    replicas: list[LiveServer],
) -> None:
    token = replicas[0].token(f"alice-{uuid.uuid4().hex[:6]}")
    ids = []
    for index in range(4):
        with replicas[index % 2].client(token) as client:
            response = client.post("/workflows/keep@local@report", json={"inputs": {}})
            assert response.status_code == 201, response.text
            ids.append(response.headers["location"].rsplit("/", 1)[1])
    with replicas[0].client(token) as client:
        for execution_id in ids:
            assert wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"})["status"] == (
                "SUCCEEDED"
            )
        deadline = time.monotonic() + 30
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            for execution_id in list(pending):
                body = client.get(f"/executions/{execution_id}").json()
                if set(body.get("data_removed") or {}) == {"work_dir", "logs", "outputs"}:
                    pending.discard(execution_id)
            time.sleep(0.2)
        assert not pending, f"data of {pending} still there"
    data_dir = replicas[0].data_dir
    for execution_id in ids:
        assert not (data_dir / "work" / execution_id).exists()
        assert not (data_dir / "results" / execution_id).exists()

    events = replicas[1].admin("audit", "list", "--action", "retention.sweep", "-o", "json")
    assert events.returncode == 0, events.stderr
    details = [json.loads(line)["details"] for line in events.stdout.splitlines()]
    # each execution counted once: no two sweeps removed the same data
    for kind in ("work_dirs", "logs", "outputs"):
        assert sum(d[kind] for d in details) == len(ids), (kind, details)
    assert sum(d["log_entries"] for d in details) > 0
    assert all(d["left"] == 0 for d in details)
