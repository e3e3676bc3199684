"""Several `hpcwaas-api` replicas on one real PostgreSQL, with the loopback cluster.

``Replicas(tmp_path, postgres, cluster)``: N LiveServers sharing one database URL (a fresh
database), one data directory (the embedded key store's master key and the result store)
and one catalog, each on its own port. ``key_for(login, user)`` gives a user a generated key
authorized for a cluster account; ``lease_owners()`` reads which replica drives what.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.cluster_support import Cluster
from tests.conftest import LiveServer, free_port
from tests.pg_support import Postgres

CATALOG = """
application: multi
environments: [cluster]
expose: [long, ticks]
workflows:
  long:
    inputs:
      seconds: {type: integer, default: 10}
    steps:
      wait:
        kind: slurm
        script: |
          echo started
          sleep {{ inputs.seconds }}
          echo finished
  ticks:
    inputs:
      count: {type: integer, default: 20}
    steps:
      tick:
        kind: slurm
        script: |
          count={{ inputs.count }}
          for i in $(seq 1 "$count"); do echo "tick $i"; sleep 0.5; done
"""

LOCAL_CATALOG = """
application: chat
environments: [local]
expose: [chatter, lines]
workflows:
  lines:
    inputs:
      count: {type: integer, default: 40}
    steps:
      speak:
        kind: shell
        run: |
          count={{ inputs.count }}
          sleep 1
          for i in $(seq 1 "$count"); do echo "line $i"; sleep 0.2; done
  chatter:
    inputs:
      delay: {type: number, default: 2}
    steps:
      speak:
        kind: shell
        run: |
          sleep {{ inputs.delay }}
          echo spoken
"""


class Replicas:
    def __init__(
        self,
        tmp_path: Path,
        postgres: Postgres,
        cluster: Cluster | None,
        *,
        count: int = 2,
        lease_seconds: float = 6,
    ) -> None:
        catalog = tmp_path / "catalog"
        catalog.mkdir(exist_ok=True)
        if cluster is not None:
            (catalog / "multi.yaml").write_text(CATALOG)
        (catalog / "chat.yaml").write_text(LOCAL_CATALOG)
        self.postgres = postgres
        self.cluster = cluster
        self.database_url = postgres.new_database()
        self.database = self.database_url.rsplit("/", 1)[1]
        environments: dict[str, dict[str, object]] = {"local": {"kind": "local"}}
        if cluster is not None:
            environments["cluster"] = {
                "kind": "slurm",
                "name": "Loopback cluster",
                "host": cluster.host,
                "port": cluster.port,
                "host_keys": [cluster.known_hosts],
                "poll_interval": 1,
                "unreachable_deadline": 120,
            }
        data_dir = tmp_path / "data"
        self.servers: list[LiveServer] = []
        for _ in range(count):
            server = LiveServer(data_dir, free_port(), database_url=self.database_url)
            server.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(environments)
            server.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
            server.env["HPCWAAS_LEASE_SECONDS"] = str(lease_seconds)
            server.env["HPCWAAS_LIMITS__MAX_TRIGGERS_PER_MINUTE"] = "1000"
            server.env["HPCWAAS_LIMITS__MAX_RUNNING_EXECUTIONS_PER_USER"] = "100"
            self.servers.append(server)

    def start(self) -> None:
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def key_for(self, token: str, login: str) -> str:
        """A generated key of the token's user, authorized for ``login`` on the cluster."""
        with self.servers[0].client(token) as client:
            response = client.post("/ssh_keys", json={})
            assert response.status_code == 201, response.text
            key = response.json()
        assert self.cluster is not None, "these replicas have no cluster"
        self.cluster.authorize(login, key["public_key"])
        return str(key["id"])

    def trigger(
        self, server: LiveServer, token: str, workflow: str, inputs: dict[str, object]
    ) -> str:
        with server.client(token) as client:
            response = client.post(f"/workflows/{workflow}", json={"inputs": inputs})
        assert response.status_code == 201, response.text
        return response.headers["location"].rsplit("/", 1)[1]

    def sql(self, query: str) -> list[list[str]]:
        """Rows of a query on the replicas' database, as strings."""
        output = self.postgres.psql(query, database=self.database)
        return [line.split("|") for line in output.splitlines() if line]

    def lease_owners(self) -> dict[str, str]:
        """Execution ID -> the replica holding its lease (unfinished executions)."""
        rows = self.sql(
            "SELECT id, lease_owner FROM executions "
            "WHERE status IN ('PENDING','RUNNING','CANCELLING') AND lease_owner IS NOT NULL"
        )
        return {row[0]: row[1] for row in rows}

    def drivers_per_account(self) -> dict[str, int]:
        """Cluster login -> how many replicas drive its unfinished executions."""
        rows = self.sql(
            "SELECT cluster_login, count(DISTINCT lease_owner) FROM executions "
            "WHERE status IN ('PENDING','RUNNING','CANCELLING') AND cluster_login IS NOT NULL "
            "GROUP BY cluster_login"
        )
        return {row[0]: int(row[1]) for row in rows}

    def log_indices_dense(self) -> dict[str, tuple[int, int]]:
        """Execution ID -> (entries, max index + 1) for executions whose indices have holes."""
        rows = self.sql(
            "SELECT execution_id, count(*), max(idx) + 1 FROM log_entries GROUP BY execution_id"
        )
        return {r[0]: (int(r[1]), int(r[2])) for r in rows if r[1] != r[2]}


def jobs_named_for(execution_id: str) -> list[str]:
    """Every Slurm job (any state Slurm still knows) submitted for the execution."""
    listed = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%i %j"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return [line for line in listed.splitlines() if f"-{execution_id[:8]}-" in line]


def logs_of(client: httpx.Client, execution_id: str) -> list[str]:
    body = client.get(f"/executions/{execution_id}/logs", params={"timeout": "0"}).json()
    return [entry["content"] for entry in body["logs"]]
