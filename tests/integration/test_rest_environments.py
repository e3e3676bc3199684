"""Cluster identities: `/environments`, and how a trigger on a cluster picks its account and key.

The server is configured with a `slurm` environment whose cluster does not exist:
nothing runs there, so these tests check what the API records and refuses only.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import LiveServer, envelope_items, free_port
from tests.environments_support import LOCAL_AND_PAPER_CLUSTER

APPLICATION = """
application: sim
environments: [cluster, local]
expose: [run]
workflows:
  run:
    inputs:
      n: {type: integer, default: 1}
    steps:
      go:
        kind: shell
        run: echo {{ inputs.n }}
"""
ON_CLUSTER = "sim@cluster@run"
ON_LOCAL = "sim@local@run"
LOGIN_RULE = "^[a-z_][a-z0-9_.-]{0,31}$"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for this module, with a cluster environment; tests keep to their own users."""
    root = tmp_path_factory.mktemp("environments")
    catalog = root / "catalog"
    catalog.mkdir()
    (catalog / "sim.yaml").write_text(APPLICATION)
    live = LiveServer(root / "data", free_port())
    live.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(LOCAL_AND_PAPER_CLUSTER)
    live.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
    live.start()
    yield live
    live.stop()


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    """A client authenticated as a user of this test's own."""
    with server.client(server.token(f"user-{uuid.uuid4().hex[:8]}")) as client:
        yield client


@pytest.fixture
def other(server: LiveServer) -> Iterator[httpx.Client]:
    """A second user."""
    with server.client(server.token(f"other-{uuid.uuid4().hex[:8]}")) as client:
        yield client


def new_key(client: httpx.Client) -> str:
    response = client.post("/ssh_keys")
    assert response.status_code == 201, response.text
    key_id: str = response.json()["id"]
    return key_id


def details(response: httpx.Response, status: int) -> list[str]:
    """The envelope's details, after checking the status and the envelope's shape."""
    return [str(item["detail"]) for item in envelope_items(response, status)]


def environments(client: httpx.Client) -> dict[str, dict[str, object]]:
    response = client.get("/environments")
    assert response.status_code == 200, response.text
    return {e["id"]: e for e in response.json()["environments"]}


def execution_ids(client: httpx.Client) -> set[str]:
    response = client.get("/executions")
    assert response.status_code == 200, response.text
    return {e["id"] for e in response.json()["executions"]}


def recorded_identity(server: LiveServer, execution_id: str) -> tuple[str | None, str | None]:
    """The (cluster_login, key_id) the execution was recorded with, read from the database."""
    with sqlite3.connect(server.data_dir / "hpcwaas.sqlite3") as db:
        row = db.execute(
            "SELECT cluster_login, key_id FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def trigger(client: httpx.Client, workflow_id: str, **inputs: object) -> httpx.Response:
    return client.post(f"/workflows/{workflow_id}", json={"inputs": inputs})


def created_id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


# --- GET /environments ---------------------------------------------------------------------


def test_list_shows_every_environment_sorted_with_kind_host_and_no_identity_yet(
    api: httpx.Client,
) -> None:
    response = api.get("/environments")
    assert response.status_code == 200
    assert response.json() == {
        "environments": [
            {
                "id": "cluster",
                "name": "Test cluster",
                "kind": "slurm",
                "host": "127.0.0.1",
                "identity": None,
            },
            {"id": "local", "name": "Local host", "kind": "local", "host": None, "identity": None},
        ]
    }


def test_environments_need_authentication(server: LiveServer) -> None:
    response = httpx.get(server.url + "/environments")
    assert details(response, 401) == ["Authorization Required"]


# --- PUT / DELETE /environments/{name}/identity ----------------------------------------------


def test_set_identity_returns_the_environment_and_the_list_shows_it(api: httpx.Client) -> None:
    key_id = new_key(api)
    response = api.put("/environments/cluster/identity", json={"login": "jdoe", "key_id": key_id})
    assert response.status_code == 200
    expected = {
        "id": "cluster",
        "name": "Test cluster",
        "kind": "slurm",
        "host": "127.0.0.1",
        "identity": {"login": "jdoe", "key_id": key_id},
    }
    assert response.json() == expected
    assert environments(api)["cluster"] == expected
    assert environments(api)["local"]["identity"] is None
    assert api.get("/environments/cluster").json() == expected


def test_identities_are_per_user(api: httpx.Client, other: httpx.Client) -> None:
    key_id = new_key(api)
    api.put("/environments/cluster/identity", json={"login": "jdoe", "key_id": key_id})
    assert environments(other)["cluster"]["identity"] is None


def test_setting_an_identity_again_replaces_it(api: httpx.Client) -> None:
    first, second = new_key(api), new_key(api)
    api.put("/environments/cluster/identity", json={"login": "jdoe", "key_id": first})
    response = api.put(
        "/environments/cluster/identity", json={"login": "jane.doe", "key_id": second}
    )
    assert response.status_code == 200
    assert environments(api)["cluster"]["identity"] == {"login": "jane.doe", "key_id": second}


def test_delete_identity_forgets_it_and_a_second_delete_is_a_404(api: httpx.Client) -> None:
    key_id = new_key(api)
    api.put("/environments/cluster/identity", json={"login": "jdoe", "key_id": key_id})
    response = api.delete("/environments/cluster/identity")
    assert response.status_code == 204
    assert response.content == b""
    assert environments(api)["cluster"]["identity"] is None
    [detail] = details(api.delete("/environments/cluster/identity"), 404)
    assert "cluster" in detail


def test_unknown_environment_is_a_404_for_get_put_and_delete(api: httpx.Client) -> None:
    key_id = new_key(api)
    body = {"login": "jdoe", "key_id": key_id}
    for response in (
        api.get("/environments/nowhere"),
        api.put("/environments/nowhere/identity", json=body),
        api.delete("/environments/nowhere/identity"),
    ):
        [detail] = details(response, 404)
        assert "nowhere" in detail


def test_a_local_environment_takes_no_identity(api: httpx.Client) -> None:
    key_id = new_key(api)
    response = api.put("/environments/local/identity", json={"login": "jdoe", "key_id": key_id})
    assert details(response, 400) == [
        "environment local runs steps on the server's host and needs no cluster account"
    ]


@pytest.mark.parametrize(
    "login", ["JDoe", "1jdoe", "-jdoe", "j doe", "jdoe\n", "", "a" * 33, "jdoe@host", "ä"]
)
def test_a_login_that_is_not_a_cluster_login_is_a_400_naming_field_and_rule(
    api: httpx.Client, login: str
) -> None:
    key_id = new_key(api)
    response = api.put("/environments/cluster/identity", json={"login": login, "key_id": key_id})
    [detail] = details(response, 400)
    assert detail.startswith("login ")
    assert LOGIN_RULE in detail
    assert environments(api)["cluster"]["identity"] is None


def test_the_longest_and_oddest_valid_logins_are_accepted(api: httpx.Client) -> None:
    key_id = new_key(api)
    for login in ("_" + "a" * 31, "j.doe-2_x"):
        response = api.put(
            "/environments/cluster/identity", json={"login": login, "key_id": key_id}
        )
        assert response.status_code == 200, response.text


def test_extra_or_missing_body_fields_are_a_400(api: httpx.Client) -> None:
    key_id = new_key(api)
    extra = {"login": "jdoe", "key_id": key_id, "password": "x"}
    [detail] = details(api.put("/environments/cluster/identity", json=extra), 400)
    assert "password" in detail
    [detail] = details(api.put("/environments/cluster/identity", json={"login": "jdoe"}), 400)
    assert "key_id" in detail


def test_a_key_that_does_not_exist_is_a_400_that_says_how_to_make_one(api: httpx.Client) -> None:
    missing = str(uuid.uuid4())
    response = api.put("/environments/cluster/identity", json={"login": "jdoe", "key_id": missing})
    assert details(response, 400) == [
        f"no SSH key {missing}: generate one with `waas ssh_keys key-gen`"
    ]


def test_someone_elses_key_is_a_400_as_an_unknown_key(
    api: httpx.Client, other: httpx.Client
) -> None:
    theirs = new_key(other)
    response = api.put("/environments/cluster/identity", json={"login": "jdoe", "key_id": theirs})
    assert details(response, 400) == [
        f"no SSH key {theirs}: generate one with `waas ssh_keys key-gen`"
    ]
    assert environments(api)["cluster"]["identity"] is None


def test_deleting_the_ssh_key_removes_the_identity(api: httpx.Client) -> None:
    key_id = new_key(api)
    api.put("/environments/cluster/identity", json={"login": "jdoe", "key_id": key_id})
    assert api.delete(f"/ssh_keys/{key_id}").status_code == 204
    assert environments(api)["cluster"]["identity"] is None


# --- triggers on a cluster -------------------------------------------------------------------


def test_trigger_with_user_id_and_vault_id_inputs_records_them(
    server: LiveServer, api: httpx.Client
) -> None:
    key_id = new_key(api)
    execution_id = created_id(trigger(api, ON_CLUSTER, user_id="jdoe", vault_id=key_id))
    assert recorded_identity(server, execution_id) == ("jdoe", key_id)
    assert api.get(f"/executions/{execution_id}").status_code == 200


def test_trigger_without_any_identity_is_a_400_with_both_ways_to_give_one(
    api: httpx.Client,
) -> None:
    before = execution_ids(api)
    assert details(trigger(api, ON_CLUSTER), 400) == [
        f"workflow {ON_CLUSTER} runs on cluster as your cluster account: "
        "pass -i user_id=<login> -i vault_id=<key id>, or register defaults with "
        "`waas environments set-identity cluster --login <login> --key <key id>`"
    ]
    assert execution_ids(api) == before


def test_trigger_with_only_a_login_and_nothing_registered_is_a_400(api: httpx.Client) -> None:
    [detail] = details(trigger(api, ON_CLUSTER, user_id="jdoe"), 400)
    assert "set-identity" in detail


def test_trigger_uses_the_registered_defaults(server: LiveServer, api: httpx.Client) -> None:
    key_id = new_key(api)
    api.put("/environments/cluster/identity", json={"login": "jdoe", "key_id": key_id})
    execution_id = created_id(trigger(api, ON_CLUSTER, n=3))
    assert recorded_identity(server, execution_id) == ("jdoe", key_id)


def test_trigger_inputs_win_over_the_registered_defaults_one_by_one(
    server: LiveServer, api: httpx.Client
) -> None:
    registered, other_key = new_key(api), new_key(api)
    api.put("/environments/cluster/identity", json={"login": "jdoe", "key_id": registered})
    by_login = created_id(trigger(api, ON_CLUSTER, user_id="admin_jdoe"))
    assert recorded_identity(server, by_login) == ("admin_jdoe", registered)
    by_key = created_id(trigger(api, ON_CLUSTER, vault_id=other_key))
    assert recorded_identity(server, by_key) == ("jdoe", other_key)


def test_trigger_with_someone_elses_key_is_a_400_as_an_unknown_key_and_records_nothing(
    api: httpx.Client, other: httpx.Client
) -> None:
    theirs = new_key(other)
    before = execution_ids(api)
    response = trigger(api, ON_CLUSTER, user_id="jdoe", vault_id=theirs)
    assert details(response, 400) == [
        f"no SSH key {theirs}: generate one with `waas ssh_keys key-gen`"
    ]
    assert execution_ids(api) == before


def test_someone_elses_key_in_the_input_is_refused_even_with_defaults_registered(
    api: httpx.Client, other: httpx.Client
) -> None:
    api.put("/environments/cluster/identity", json={"login": "jdoe", "key_id": new_key(api)})
    before = execution_ids(api)
    assert trigger(api, ON_CLUSTER, vault_id=new_key(other)).status_code == 400
    assert execution_ids(api) == before


def test_trigger_with_a_key_that_does_not_exist_is_a_400(api: httpx.Client) -> None:
    missing = str(uuid.uuid4())
    response = trigger(api, ON_CLUSTER, user_id="jdoe", vault_id=missing)
    assert details(response, 400) == [
        f"no SSH key {missing}: generate one with `waas ssh_keys key-gen`"
    ]
    assert response.json()["errors"][0]["source"] == {"input": "vault_id"}
    assert execution_ids(api) == set()


def test_trigger_with_a_bad_login_input_is_a_400_naming_the_input(api: httpx.Client) -> None:
    key_id = new_key(api)
    response = trigger(api, ON_CLUSTER, user_id="Not A Login", vault_id=key_id)
    [detail] = details(response, 400)
    assert detail.startswith("input 'user_id' ")
    assert response.json()["errors"][0]["source"] == {"input": "user_id"}
    assert LOGIN_RULE in detail
    assert execution_ids(api) == set()


def test_trigger_keeps_user_id_and_vault_id_in_the_inputs_as_given(
    server: LiveServer, api: httpx.Client
) -> None:
    key_id = new_key(api)
    execution_id = created_id(trigger(api, ON_CLUSTER, user_id="jdoe", vault_id=key_id))
    with sqlite3.connect(server.data_dir / "hpcwaas.sqlite3") as db:
        [raw] = db.execute("SELECT inputs FROM executions WHERE id = ?", (execution_id,)).fetchone()
    assert json.loads(raw) == {"n": 1, "user_id": "jdoe", "vault_id": key_id}


def test_a_local_workflow_needs_no_identity_and_records_none(
    server: LiveServer, api: httpx.Client
) -> None:
    execution_id = created_id(trigger(api, ON_LOCAL))
    assert recorded_identity(server, execution_id) == (None, None)


def test_local_workflows_ignore_the_reserved_inputs(server: LiveServer, api: httpx.Client) -> None:
    execution_id = created_id(trigger(api, ON_LOCAL, user_id="jdoe", vault_id="not-a-key"))
    assert recorded_identity(server, execution_id) == (None, None)


def test_the_openapi_document_describes_the_environment_routes(server: LiveServer) -> None:
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert {"get"} <= set(paths["/environments"])
    assert {"put", "delete"} <= set(paths["/environments/{name}/identity"])
