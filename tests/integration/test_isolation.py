"""Two users, every route: B never reaches A's executions, logs, outputs, keys, identity or tokens.

User A owns a finished execution (with logs and outputs), a running one, an SSH key, a
cluster identity on a `slurm` environment and two tokens. Each test case is one attempt of
user B on A's objects: it must get what an unknown ID gets (or the documented 403), never
A's data, and afterwards A sees everything exactly as before. The `slurm` environment's
cluster does not exist: nothing reaches it, since every attempt on it is refused before
anything runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer, envelope_item, free_port, wait_for_status
from tests.environments_support import LOCAL_AND_PAPER_CLUSTER

from hpcwaas.settings import PACKAGED_CATALOG

APPLICATION = """
application: sim
environments: [cluster]
expose: [run]
workflows:
  run:
    steps:
      go: {kind: shell, run: echo running}
"""
KEYED = """
application: keyed
environments: [local]
expose: [use]
workflows:
  use:
    inputs:
      key: {type: ssh_key}
    steps:
      go: {kind: shell, run: "true"}
"""
OPERATOR = "isolation-operator"
REPORT_LABEL = "a-private-report-label"


@dataclass
class World:
    """A's objects, and what A saw of them before B's attempts."""

    server: LiveServer
    a: httpx.Client
    b: httpx.Client
    operator: httpx.Client
    a_user: str
    b_user: str
    a_tokens: list[str]
    finished: str
    running: str
    key_id: str
    seen_by_a: dict[str, Any]
    every_execution: set[str]

    def a_view(self) -> dict[str, Any]:
        """Everything A can read of their own objects."""
        a = self.a
        return {
            "finished": a.get(f"/executions/{self.finished}").json(),
            "finished_logs": a.get(
                f"/executions/{self.finished}/logs", params={"levels": 15}
            ).json(),
            "running": a.get(f"/executions/{self.running}").json()["status"],
            "executions": sorted(e["id"] for e in a.get("/executions").json()["executions"]),
            "ssh_keys": a.get("/ssh_keys").json(),
            "environments": a.get("/environments").json(),
            "me": a.get("/users/me").json()["user_id"],
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("isolation")
    catalog = root / "catalog"
    catalog.mkdir()
    (catalog / "sim.yaml").write_text(APPLICATION)
    (catalog / "keyed.yaml").write_text(KEYED)
    server = LiveServer(root / "data", free_port())
    server.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(LOCAL_AND_PAPER_CLUSTER)
    server.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(PACKAGED_CATALOG), str(catalog)])
    server.env["HPCWAAS_OPERATORS"] = json.dumps({"users": [OPERATOR]})
    server.start()
    a_user, b_user = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    a_tokens = [server.token(a_user), server.token(a_user)]
    with (
        server.client(a_tokens[0]) as a,
        server.client(server.token(b_user)) as b,
        server.client(server.token(OPERATOR)) as operator,
    ):
        key = a.post("/ssh_keys", json={"type": "ed25519", "metadata": {"owner": "A"}})
        assert key.status_code == 201, key.text
        key_id = key.json()["id"]
        identity = a.put(
            "/environments/cluster/identity", json={"login": "alice", "key_id": key_id}
        )
        assert identity.status_code == 200, identity.text
        finished = created_id(trigger(a, "demo@local@sweep", label=REPORT_LABEL))
        wait_for_status(a, finished, {"SUCCEEDED"}, timeout=60)
        running = created_id(trigger(a, "demo@local@sleep"))
        wait_for_status(a, running, {"RUNNING"})
        world = World(
            server=server,
            a=a,
            b=b,
            operator=operator,
            a_user=a_user,
            b_user=b_user,
            a_tokens=a_tokens,
            finished=finished,
            running=running,
            key_id=key_id,
            seen_by_a={},
            every_execution=set(),
        )
        world.seen_by_a = world.a_view()
        world.every_execution = every_execution(operator)
        assert REPORT_LABEL in world.seen_by_a["finished"]["outputs"]["report"]
        yield world
        a.delete(f"/executions/{running}")
    server.stop()


def trigger(client: httpx.Client, workflow_id: str, **inputs: object) -> httpx.Response:
    return client.post(f"/workflows/{workflow_id}", json={"inputs": inputs})


def created_id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def every_execution(operator: httpx.Client) -> set[str]:
    response = operator.get("/executions", params={"all": "true", "limit": 1000})
    assert response.status_code == 200, response.text
    return {e["id"] for e in response.json()["executions"]}


def error(response: httpx.Response, status: int) -> str:
    """The single envelope item's detail, after checking status and shape."""
    item = envelope_item(response, status)
    return str(item["detail"])


# --- B's attempts: each returns nothing, and fails the test if B got anything of A's ------------


def get_execution(w: World) -> None:
    for execution_id in (w.finished, w.running):
        detail = error(w.b.get(f"/executions/{execution_id}"), 404)
        # Word for word what an execution that does not exist gets: the ID leaks nothing.
        unknown = str(uuid.uuid4())
        assert detail.replace(execution_id, unknown) == error(
            w.b.get(f"/executions/{unknown}"), 404
        )


def get_outputs(w: World) -> None:
    response = w.b.get(f"/executions/{w.finished}")
    error(response, 404)
    assert REPORT_LABEL not in response.text
    assert "outputs" not in response.json()


def get_logs(w: World) -> None:
    response = w.b.get(f"/executions/{w.finished}/logs", params={"levels": 15})
    detail = error(response, 404)
    assert "counting" not in response.text
    unknown = str(uuid.uuid4())
    assert detail.replace(w.finished, unknown) == error(
        w.b.get(f"/executions/{unknown}/logs", params={"levels": 15}), 404
    )


def long_poll_logs_of_a_running_execution(w: World) -> None:
    # Refused at once, not after the wait: the long poll is no oracle either.
    response = w.b.get(f"/executions/{w.running}/logs", params={"from": 100, "timeout": "20s"})
    error(response, 404)
    assert response.elapsed.total_seconds() < 10


def follow_events_of_a_running_execution(w: World) -> None:
    # The event stream answers 404 at once instead of opening a stream on A's execution.
    response = w.b.get(f"/executions/{w.running}/events", headers={"Last-Event-ID": "0"})
    error(response, 404)
    assert response.elapsed.total_seconds() < 10


def cancel_running_execution(w: World) -> None:
    error(w.b.delete(f"/executions/{w.running}"), 404)


def cancel_finished_execution(w: World) -> None:
    # 404, not the 409 "already finished" that would tell B it exists.
    error(w.b.delete(f"/executions/{w.finished}"), 404)


def list_executions(w: World) -> None:
    response = w.b.get("/executions")
    assert response.status_code == 200
    assert response.json()["executions"] == []


def list_every_users_executions(w: World) -> None:
    response = w.b.get("/executions", params={"all": "true"})
    assert "operators" in error(response, 403)
    assert w.finished not in response.text


def list_ssh_keys(w: World) -> None:
    response = w.b.get("/ssh_keys")
    assert response.status_code == 200
    assert response.json()["ssh_keys"] == []
    assert w.key_id not in response.text


def delete_ssh_key(w: World) -> None:
    detail = error(w.b.delete(f"/ssh_keys/{w.key_id}"), 404)
    unknown = str(uuid.uuid4())
    assert detail.replace(w.key_id, unknown) == error(w.b.delete(f"/ssh_keys/{unknown}"), 404)


def get_ssh_key(w: World) -> None:
    # No route reads one key: A's key ID gets what any ID gets, and no key material.
    response = w.b.get(f"/ssh_keys/{w.key_id}")
    unknown = str(uuid.uuid4())
    other = w.b.get(f"/ssh_keys/{unknown}")
    assert response.status_code == other.status_code
    assert response.status_code in (404, 405)
    assert response.text.replace(w.key_id, unknown) == other.text
    assert "ssh-ed25519" not in response.text


def same_as_unknown_key(w: World, attempt: Callable[[str], httpx.Response]) -> None:
    """A's key ID gets exactly the answer an unknown key ID gets (docs/security.md)."""
    unknown = str(uuid.uuid4())
    response, other = attempt(w.key_id), attempt(unknown)
    assert response.status_code == other.status_code == 400, response.text
    assert response.json() == json.loads(other.text.replace(unknown, w.key_id))


def trigger_with_as_key(w: World) -> None:
    same_as_unknown_key(w, lambda key: trigger(w.b, "sim@cluster@run", user_id="bob", vault_id=key))


def trigger_with_as_key_as_ssh_key_input(w: World) -> None:
    same_as_unknown_key(w, lambda key: trigger(w.b, "keyed@local@use", key=key))


def register_identity_with_as_key(w: World) -> None:
    same_as_unknown_key(
        w,
        lambda key: w.b.put("/environments/cluster/identity", json={"login": "bob", "key_id": key}),
    )
    assert w.b.get("/environments/cluster").json()["identity"] is None


def read_as_identity(w: World) -> None:
    for response in (w.b.get("/environments/cluster"), w.b.get("/environments")):
        assert response.status_code == 200
        assert "alice" not in response.text
        assert w.key_id not in response.text
    assert w.b.get("/environments/cluster").json()["identity"] is None


def delete_as_identity(w: World) -> None:
    error(w.b.delete("/environments/cluster/identity"), 404)


def trigger_with_as_registered_identity(w: World) -> None:
    # B has registered nothing: A's defaults are not B's.
    response = trigger(w.b, "sim@cluster@run")
    assert "user_id" in error(response, 400)


def revoke_as_tokens(w: World) -> None:
    assert "only your own tokens" in error(w.b.delete(f"/users/{w.a_user}/tokens"), 403)


def who_am_i(w: World) -> None:
    me = w.b.get("/users/me").json()
    assert me["user_id"] == w.b_user
    assert me["operator"] is False


ATTEMPTS: list[Callable[[World], None]] = [
    get_execution,
    get_outputs,
    get_logs,
    long_poll_logs_of_a_running_execution,
    follow_events_of_a_running_execution,
    cancel_running_execution,
    cancel_finished_execution,
    list_executions,
    list_every_users_executions,
    list_ssh_keys,
    get_ssh_key,
    delete_ssh_key,
    trigger_with_as_key,
    trigger_with_as_key_as_ssh_key_input,
    register_identity_with_as_key,
    read_as_identity,
    delete_as_identity,
    trigger_with_as_registered_identity,
    revoke_as_tokens,
    who_am_i,
]


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=lambda f: f.__name__)
def test_user_b_cannot_reach_user_as_objects(
    world: World, attempt: Callable[[World], None]
) -> None:
    attempt(world)

    # A's objects are as they were, and nothing new was recorded for anyone.
    assert world.a_view() == world.seen_by_a
    assert every_execution(world.operator) == world.every_execution
    assert world.b.get("/ssh_keys").json()["ssh_keys"] == []
    for token in world.a_tokens:
        with world.server.client(token) as a:
            assert a.get("/users/me").status_code == 200
