"""The key store unreachable while a step needs its SSH key: the step waits and retries, then
fails with a clear message past the environment's ``unreachable_deadline``.

Vault cannot be installed here: the key store is the KV v2 test server of tests/vault_kv2.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from tests.cluster_support import Cluster
from tests.conftest import LiveServer, free_port, wait_for_status

if TYPE_CHECKING:
    from tests.vault_kv2 import FakeVault

CATALOG = """
application: outage
environments: [cluster]
expose: [short]
workflows:
  short:
    steps:
      run:
        kind: slurm
        script: echo ran
"""


def _server(tmp_path: Path, vault: FakeVault, cluster: Cluster, deadline: float) -> LiveServer:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "outage.yaml").write_text(CATALOG)
    path = tmp_path / "hpcwaas.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "vault_config": vault.config_section(),
                "catalog_dirs": [str(catalog)],
                "environments": {
                    "cluster": {
                        "kind": "slurm",
                        "host": cluster.host,
                        "port": cluster.port,
                        "host_keys": [cluster.known_hosts],
                        "poll_interval": 1,
                        "unreachable_deadline": deadline,
                    }
                },
            }
        )
    )
    return LiveServer(tmp_path / "data", free_port(), extra_args=["--config", str(path)])


@pytest.fixture
def make_server(
    tmp_path: Path, vault_server: FakeVault, cluster: Cluster, cluster_jobs_cleanup: Cluster
) -> Iterator[Callable[[float], LiveServer]]:
    servers: list[LiveServer] = []

    def make(deadline: float) -> LiveServer:
        server = _server(tmp_path, vault_server, cluster, deadline).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def _trigger_with_vault_down(
    server: LiveServer, vault: FakeVault, cluster: Cluster, user: str
) -> tuple[str, str]:
    token = server.token(user)
    with server.client(token) as client:
        key = client.post("/ssh_keys").json()
        cluster.clear_authorized("hpcuser1")
        cluster.authorize("hpcuser1", key["public_key"])
        vault.stop()
        response = client.post(
            "/workflows/outage@cluster@short",
            json={"inputs": {"user_id": "hpcuser1", "vault_id": key["id"]}},
        )
        assert response.status_code == 201, response.text
    return token, response.headers["location"].rsplit("/", 1)[1]


def test_a_step_waits_for_the_key_store_and_runs_once_it_is_back(
    make_server: Callable[[float], LiveServer], vault_server: FakeVault, cluster: Cluster
) -> None:
    server = make_server(120)
    token, execution_id = _trigger_with_vault_down(server, vault_server, cluster, "patient")
    time.sleep(5)
    with server.client(token) as client:
        assert client.get(f"/executions/{execution_id}").json()["status"] == "RUNNING"
        vault_server.start()
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=90)
    assert body["status"] == "SUCCEEDED", body


def test_a_key_store_away_past_the_deadline_fails_the_execution_saying_so(
    make_server: Callable[[float], LiveServer], vault_server: FakeVault, cluster: Cluster
) -> None:
    server = make_server(6)
    token, execution_id = _trigger_with_vault_down(server, vault_server, cluster, "hasty")
    with server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=60)
    assert body["status"] == "FAILED", body
    assert "key store cannot be reached" in body["error"], body["error"]
