"""The key store unreachable while a step needs its SSH key: the step waits and retries, then
fails with a clear message past the environment's ``unreachable_deadline``.

A Vault restart while an execution runs leaves it running, and the next steps wait for Vault
to be unsealed.

The key store is a persistent OpenBao server (tests/openbao_support.py), stopped and started
again with its keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from tests.cluster_support import Cluster
from tests.conftest import LiveServer, free_port, wait_for_status
from tests.openbao_support import OpenBao

CATALOG = """
application: outage
environments: [cluster]
expose: [short, long]
workflows:
  short:
    steps:
      run:
        kind: slurm
        script: echo ran
  long:
    steps:
      run:
        kind: slurm
        script: sleep 10; echo ran
"""


def _server(tmp_path: Path, vault: OpenBao, cluster: Cluster, deadline: float) -> LiveServer:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "outage.yaml").write_text(CATALOG)
    path = tmp_path / "hpcwaas.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "vault_config": vault.hpcwaas_config(),
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
def vault_server(make_openbao: Callable[..., OpenBao]) -> OpenBao:
    return make_openbao(persistent=True)


@pytest.fixture
def make_server(
    tmp_path: Path, vault_server: OpenBao, cluster: Cluster, cluster_jobs_cleanup: Cluster
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
    server: LiveServer, vault: OpenBao, cluster: Cluster, user: str
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
    make_server: Callable[[float], LiveServer], vault_server: OpenBao, cluster: Cluster
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
    make_server: Callable[[float], LiveServer], vault_server: OpenBao, cluster: Cluster
) -> None:
    server = make_server(6)
    token, execution_id = _trigger_with_vault_down(server, vault_server, cluster, "hasty")
    with server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=60)
    assert body["status"] == "FAILED", body
    assert "key store cannot be reached" in body["error"], body["error"]


def test_a_vault_restart_mid_run_spares_the_running_execution_and_the_next_waits_for_unseal(
    make_server: Callable[[float], LiveServer], vault_server: OpenBao, cluster: Cluster
) -> None:
    server = make_server(120)
    with server.client(server.token("steady")) as client:
        first, second = (client.post("/ssh_keys").json() for _ in range(2))
        cluster.clear_authorized("hpcuser1")
        for key in (first, second):
            cluster.authorize("hpcuser1", key["public_key"])
        running = client.post(
            "/workflows/outage@cluster@long",
            json={"inputs": {"user_id": "hpcuser1", "vault_id": first["id"]}},
        )
        assert running.status_code == 201, running.text
        running_id = running.headers["location"].rsplit("/", 1)[1]
        deadline = time.monotonic() + 60
        while " RUNNING " not in cluster.squeue("hpcuser1") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert " RUNNING " in cluster.squeue("hpcuser1"), "the long job never ran"

        vault_server.stop()
        vault_server.start(unseal=False)  # the same storage, sealed: every call is a 503
        assert client.post("/ssh_keys").status_code == 503
        # Another key, so the engine needs the key store (not an open SSH connection).
        waiting = client.post(
            "/workflows/outage@cluster@short",
            json={"inputs": {"user_id": "hpcuser1", "vault_id": second["id"]}},
        )
        assert waiting.status_code == 201, waiting.text
        waiting_id = waiting.headers["location"].rsplit("/", 1)[1]
        time.sleep(3)
        assert client.get(f"/executions/{waiting_id}").json()["status"] == "RUNNING"
        vault_server.unseal()

        for execution_id in (running_id, waiting_id):
            body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=90)
            assert body["status"] == "SUCCEEDED", body
        assert client.post("/ssh_keys").status_code == 201
    # The server's token was kept through the restart: it never needed to log in again.
    assert len(vault_server.requests("auth/approle/login")) == 1
