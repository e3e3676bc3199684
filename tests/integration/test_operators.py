"""Operators: every user's executions (list, read, logs, cancel) and anyone's tokens.

The server lists one operator by user ID; a second test logs users in through a real
OpenID Connect provider to check that a group makes its members operators.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from tests.conftest import BIN, LiveServer, free_port, wait_for_status
from tests.integration.conftest import SsoSetup
from tests.sso_support import complete_login

from hpcwaas.client import AsyncClient, Client, Forbidden, Unauthorized

OPERATOR = f"operator-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("operators")
    config = root / "hpcwaas.yml"
    config.write_text(yaml.safe_dump({"operators": {"users": [OPERATOR], "groups": ["ops"]}}))
    live = LiveServer(root / "data", free_port(), extra_args=["--config", str(config)]).start()
    yield live
    live.stop()


@pytest.fixture
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    """A user who is not an operator."""
    with server.client(server.token(f"alice-{uuid.uuid4().hex[:8]}")) as client:
        yield client


@pytest.fixture
def bob(server: LiveServer) -> Iterator[httpx.Client]:
    """Another user who is not an operator."""
    with server.client(server.token(f"bob-{uuid.uuid4().hex[:8]}")) as client:
        yield client


@pytest.fixture
def operator(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(server.token(OPERATOR)) as client:
        yield client


def user_id(client: httpx.Client) -> str:
    return str(client.get("/users/me").json()["user_id"])


def trigger(client: httpx.Client, workflow: str, **inputs: object) -> str:
    response = client.post(f"/workflows/demo@local@{workflow}", json={"inputs": inputs})
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def forbidden_detail(response: httpx.Response) -> str:
    assert response.status_code == 403, response.text
    [item] = response.json()["errors"]
    assert (item["id"], item["status"], item["title"]) == ("forbidden", 403, "Forbidden")
    return str(item["detail"])


def all_executions(client: httpx.Client) -> dict[str, dict[str, object]]:
    """Every user's executions, following the cursor through pages."""
    found: dict[str, dict[str, object]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"all": "true", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/executions", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        found.update({e["id"]: e for e in body["executions"]})
        cursor = body.get("next_cursor")
        if not cursor:
            return found


# --- GET /users/me -------------------------------------------------------------------------


def test_users_me_says_whether_the_caller_is_an_operator(
    operator: httpx.Client, alice: httpx.Client
) -> None:
    assert operator.get("/users/me").json()["operator"] is True
    assert alice.get("/users/me").json()["operator"] is False


# --- GET /executions?all=true --------------------------------------------------------------


def test_an_operator_lists_every_users_executions_with_their_owner(
    operator: httpx.Client, alice: httpx.Client, bob: httpx.Client
) -> None:
    mine = trigger(alice, "hello")
    theirs = trigger(bob, "hello")
    listed = all_executions(operator)
    assert listed[mine]["owner"] == user_id(alice)
    assert listed[theirs]["owner"] == user_id(bob)
    # Without all=true an operator sees only their own, like anyone.
    own = operator.get("/executions").json()["executions"]
    assert mine not in {e["id"] for e in own}


def test_all_executions_is_forbidden_to_others_and_names_the_operators_key(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    trigger(bob, "hello")
    detail = forbidden_detail(alice.get("/executions", params={"all": "true"}))
    assert "`operators`" in detail
    assert "operators only" in detail


def test_each_listed_execution_names_its_owner(alice: httpx.Client) -> None:
    execution_id = trigger(alice, "hello")
    [item] = alice.get("/executions").json()["executions"]
    assert item["id"] == execution_id
    assert item["owner"] == user_id(alice)


# --- GET/DELETE /executions/{id}, logs -----------------------------------------------------


def test_an_operator_reads_another_users_execution_outputs_and_logs(
    operator: httpx.Client, alice: httpx.Client
) -> None:
    execution_id = trigger(alice, "sweep", label="theirs")
    wait_for_status(alice, execution_id, {"SUCCEEDED"}, timeout=60)
    seen = operator.get(f"/executions/{execution_id}")
    assert seen.status_code == 200
    assert seen.json() == alice.get(f"/executions/{execution_id}").json()
    assert "report theirs" in seen.json()["outputs"]["report"]
    logs = operator.get(f"/executions/{execution_id}/logs", params={"levels": 15})
    assert logs.status_code == 200
    assert (
        logs.json() == alice.get(f"/executions/{execution_id}/logs", params={"levels": 15}).json()
    )
    assert any("right: counting to 3" in e["content"] for e in logs.json()["logs"])


def test_an_operator_cancels_another_users_execution(
    operator: httpx.Client, alice: httpx.Client
) -> None:
    execution_id = trigger(alice, "sleep")
    wait_for_status(alice, execution_id, {"RUNNING"})
    assert operator.delete(f"/executions/{execution_id}").status_code == 202
    wait_for_status(alice, execution_id, {"CANCELLED"})
    logs = alice.get(f"/executions/{execution_id}/logs").json()["logs"]
    assert any(f"cancelled by {OPERATOR}" in e["content"] for e in logs), logs


def test_others_executions_stay_not_found_for_a_non_operator(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    execution_id = trigger(bob, "sleep")
    for response in (
        alice.get(f"/executions/{execution_id}"),
        alice.get(f"/executions/{execution_id}/logs", params={"timeout": "0s"}),
        alice.delete(f"/executions/{execution_id}"),
    ):
        assert response.status_code == 404, response.text
    assert bob.get(f"/executions/{execution_id}").json()["status"] in {"PENDING", "RUNNING"}
    bob.delete(f"/executions/{execution_id}")


# --- DELETE /users/{user_id}/tokens --------------------------------------------------------


def test_an_operator_revokes_every_token_of_another_user(
    server: LiveServer, operator: httpx.Client
) -> None:
    victim = f"carol-{uuid.uuid4().hex[:8]}"
    first, second = server.token(victim), server.token(victim)
    assert operator.delete(f"/users/{victim}/tokens").status_code == 204
    for token in (first, second):
        with server.client(token) as client:
            response = client.get("/users/me")
        assert response.status_code == 401
        assert response.json()["errors"][0]["detail"] == (
            "You are not logged in or your session has expired"
        )
    # The operator's own token is untouched.
    assert operator.get("/users/me").status_code == 200


def test_a_user_revokes_their_own_tokens(server: LiveServer, alice: httpx.Client) -> None:
    me = user_id(alice)
    with server.client(server.token(me)) as second:
        assert alice.delete(f"/users/{me}/tokens").status_code == 204
        assert second.get("/users/me").status_code == 401
    assert alice.get("/users/me").status_code == 401


def test_a_non_operator_cannot_revoke_another_users_tokens(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    detail = forbidden_detail(alice.delete(f"/users/{user_id(bob)}/tokens"))
    assert "only your own tokens" in detail
    assert "`operators`" in detail
    assert bob.get("/users/me").status_code == 200


# --- waas executions list --all ------------------------------------------------------------


def waas(server: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "waas"), "--api_url", server.url, f"-t={token}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(BIN), "HOME": str(Path(server.data_dir).parent)},
    )


def test_waas_executions_list_all_shows_an_owner_column(
    server: LiveServer, alice: httpx.Client
) -> None:
    execution_id = trigger(alice, "hello")
    owner = user_id(alice)
    result = waas(server, server.token(OPERATOR), "executions", "list", "--all")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]  # piped: the original's table, its header first
    assert re.search(r"Execution ID.*Workflow ID.*Status.*Created.*Ended.*Owner", header), header
    [line] = [line for line in result.stdout.splitlines() if execution_id in line]
    assert owner in line

    result = waas(server, server.token(OPERATOR), "-o", "json", "executions", "list", "--all")
    assert result.returncode == 0, result.stderr
    listed = {e["id"]: e for e in json.loads(result.stdout)}
    assert listed[execution_id]["owner"] == owner
    assert set(listed[execution_id]) >= {"id", "workflow_id", "status", "created_at", "owner"}


def test_waas_executions_list_all_is_refused_to_a_non_operator(server: LiveServer) -> None:
    result = waas(server, server.token(f"dave-{uuid.uuid4().hex[:8]}"), "executions", "ls", "--all")
    assert result.returncode == 1
    assert "forbidden" in result.stderr
    assert "operators" in result.stderr
    assert result.stdout == ""


# --- operators by group (groups come from the identity provider) ---------------------------


def test_members_of_an_operators_group_are_operators(
    sso: SsoSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # alice is in the provider's group `climate`, bob in none.
    monkeypatch.setenv("HPCWAAS_OPERATORS", json.dumps({"groups": ["climate"]}))
    server = sso.start()
    tokens = {}
    for name in ("alice", "bob"):
        page = complete_login(sso.login_url, name)
        match = re.search(r'id="token">\s*([^<\s]+)\s*<', page.text)
        assert match, page.text
        tokens[name] = match.group(1)
    with server.client(tokens["alice"]) as alice, server.client(tokens["bob"]) as bob:
        assert alice.get("/users/me").json()["operator"] is True
        assert bob.get("/users/me").json()["operator"] is False
        execution_id = trigger(bob, "hello")
        assert execution_id in all_executions(alice)
        assert alice.get(f"/executions/{execution_id}").status_code == 200
        forbidden_detail(bob.get("/executions", params={"all": "true"}))


# --- the SDK ---------------------------------------------------------------------------------


def test_the_sync_sdk_lists_everyones_executions_and_revokes_tokens(
    server: LiveServer, alice: httpx.Client
) -> None:
    execution_id = trigger(alice, "hello")
    victim = f"erin-{uuid.uuid4().hex[:8]}"
    victim_token = server.token(victim)
    with Client(server.url, token=server.token(OPERATOR)) as sdk:
        assert sdk.whoami().operator is True
        page = sdk.list_executions(limit=100, all_users=True)
        owners = {e.id: e.owner for e in page.executions}
        assert owners[execution_id] == user_id(alice)
        sdk.revoke_user_tokens(victim)
    with Client(server.url, token=victim_token) as sdk, pytest.raises(Unauthorized):
        sdk.whoami()


async def test_the_async_sdk_passes_all_users_and_gets_forbidden_as_a_non_operator(
    server: LiveServer,
) -> None:
    async with AsyncClient(server.url, token=server.token(f"fay-{uuid.uuid4().hex[:8]}")) as sdk:
        assert (await sdk.whoami()).operator is False
        assert (await sdk.list_executions(all_users=False)).executions == []
        with pytest.raises(Forbidden, match="operators"):
            await sdk.list_executions(all_users=True)


def audit_events(client: httpx.Client, **params: str | int) -> list[dict[str, object]]:
    response = client.get("/audit", params=params)
    assert response.status_code == 200, response.text
    events: list[dict[str, object]] = response.json()["events"]
    return events


def test_operator_reads_the_audit_log_of_other_users_actions(
    operator: httpx.Client, alice: httpx.Client
) -> None:
    alice_id = user_id(alice)
    execution_id = trigger(alice, "hello", name="audit")
    assert alice.delete(f"/users/{alice_id}/tokens").status_code == 204

    [trigger_event] = audit_events(operator, action="execution.trigger", target=execution_id)
    assert trigger_event["actor"] == alice_id
    assert trigger_event["outcome"] == "success"
    assert trigger_event["source"] == "127.0.0.1"
    assert trigger_event["details"]["workflow_id"] == "demo@local@hello"  # type: ignore[index]
    [revoked] = audit_events(operator, action="token.revoke", target=alice_id)
    assert revoked["actor"] == alice_id and revoked["details"] == {"tokens": 1}


def test_audit_log_filters_by_time_and_pages_without_repeats(
    operator: httpx.Client, bob: httpx.Client
) -> None:
    ids = [trigger(bob, "hello", name=str(n)) for n in range(3)]
    actor = user_id(bob)
    seen: list[object] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"actor": actor, "action": "execution.trigger", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = operator.get("/audit", params=params).json()
        seen += [event["target"] for event in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids[::-1]
    assert audit_events(operator, actor=actor, until="2000-01-01T00:00:00Z") == []
    assert len(audit_events(operator, actor=actor, since="2000-01-01T00:00:00Z")) == 3


def test_audit_log_is_for_operators_only(alice: httpx.Client) -> None:
    detail = forbidden_detail(alice.get("/audit"))
    assert "operators" in detail


@pytest.mark.parametrize(
    ("params", "named"),
    [({"action": "launch"}, "action"), ({"since": "yesterday"}, "since"), ({"limit": 0}, "limit")],
)
def test_audit_log_names_a_bad_filter(
    operator: httpx.Client, params: dict[str, object], named: str
) -> None:
    response = operator.get("/audit", params=params)
    assert response.status_code == 400, response.text
    [item] = response.json()["errors"]
    assert item["id"] == "bad_request" and named in item["detail"]
