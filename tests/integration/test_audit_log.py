"""The audit log end to end: actions through a real server, read back with `hpcwaas-api audit list`.

Every API event must name its actor, its target, the client's address (127.0.0.1 here) and
the request's X-Request-ID; nothing secret may reach it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer, free_port, post_login_form, wait_for_status
from tests.environments_support import LOCAL_AND_PAPER_CLUSTER
from tests.integration.conftest import SsoSetup
from tests.sso_support import approve_device_code, complete_login

EXAMPLES = Path(__file__).parents[2] / "examples"
ON_CLUSTER = """
application: sim
environments: [cluster]
expose: [run]
workflows:
  run:
    steps:
      go: {kind: shell, run: echo hello}
"""
PASSWORD = "correct-horse-battery"
WRONG_PASSWORD = "wrong-horse-9f2c41"


def audit_events(server: LiveServer, *args: str) -> list[dict[str, Any]]:
    """`hpcwaas-api audit list --output json` with ``args``: one event per line."""
    result = server.admin("audit", "list", "--output", "json", "--limit", "1000", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def only(events: list[dict[str, Any]], **expected: Any) -> dict[str, Any]:
    """The one event whose fields have the expected values."""
    matching = [e for e in events if all(e.get(k) == v for k, v in expected.items())]
    assert len(matching) == 1, (expected, events)
    return matching[0]


def rid() -> str:
    return f"audit-{uuid.uuid4().hex[:12]}"


def token_of(page: httpx.Response) -> str:
    match = re.search(r'id="token">\s*([^<\s]+)\s*<', page.text)
    assert match, page.text
    return match.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for this module (demo catalog, a cluster environment, local accounts)."""
    root = tmp_path_factory.mktemp("audit")
    catalog = root / "catalog"
    catalog.mkdir()
    (catalog / "sim.yaml").write_text(ON_CLUSTER)
    live = LiveServer(root / "data", free_port())
    live.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(LOCAL_AND_PAPER_CLUSTER)
    live.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(EXAMPLES), str(catalog)])
    live.start()
    yield live
    live.stop()


def test_form_login_failure_success_and_logout_are_audited(server: LiveServer) -> None:
    name = f"carol-{uuid.uuid4().hex[:6]}"
    added = server.admin("users", "add", name, "--password-stdin", input_text=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    failed_rid, login_rid, logout_rid = rid(), rid(), rid()

    with httpx.Client() as browser:
        refused = post_login_form(
            browser, server.url, name, WRONG_PASSWORD, headers={"X-Request-ID": failed_rid}
        )
        assert refused.status_code == 401
        page = post_login_form(
            browser, server.url, name, PASSWORD, headers={"X-Request-ID": login_rid}
        )
    assert page.status_code == 200, page.text
    token = token_of(page)
    with server.client(token) as client:
        assert client.delete("/auth/token", headers={"X-Request-ID": logout_rid}).status_code == 204

    events = audit_events(server, "--user", name)
    failure = only(events, action="login", outcome="failure")
    assert failure["source"] == "127.0.0.1"
    assert failure["request_id"] == failed_rid
    assert failure["details"] == {"method": "form", "reason": "wrong user name or password"}
    login = only(events, action="login", outcome="success")
    token_id = login["target"]
    assert (login["source"], login["request_id"]) == ("127.0.0.1", login_rid)
    issued = only(events, action="token.issue")
    assert (issued["target"], issued["request_id"], issued["details"]["user"]) == (
        token_id,
        login_rid,
        name,
    )
    logout = only(events, action="logout")
    assert (logout["target"], logout["source"], logout["request_id"]) == (
        token_id,
        "127.0.0.1",
        logout_rid,
    )
    listed = server.admin("tokens", "list", "--user", name).stdout
    assert token_id in listed and "revoked" in listed
    text = json.dumps(events)
    assert WRONG_PASSWORD not in text and PASSWORD not in text and token not in text


def test_a_login_for_an_unknown_account_is_a_failure_under_the_name_tried(
    server: LiveServer,
) -> None:
    tried = f"mallory-{uuid.uuid4().hex[:6]}"
    request_id = rid()
    with httpx.Client() as browser:
        post_login_form(
            browser, server.url, tried, WRONG_PASSWORD, headers={"X-Request-ID": request_id}
        )
    (event,) = audit_events(server, "--user", tried)
    assert (event["action"], event["outcome"], event["request_id"]) == (
        "login",
        "failure",
        request_id,
    )
    assert WRONG_PASSWORD not in json.dumps(event)
    assert audit_events(server, "--user", tried, "--outcome", "success") == []


def test_admin_token_issue_and_revoke_are_audited_as_the_operator_from_the_cli(
    server: LiveServer, user: str
) -> None:
    token = server.token(user)
    listed = server.admin("tokens", "list", "--user", user).stdout
    token_id = listed.splitlines()[1].split()[0]
    assert server.admin("tokens", "revoke", token_id).returncode == 0
    second = server.token(user)
    assert server.admin("tokens", "revoke", "--user", user).returncode == 0
    assert server.admin("tokens", "revoke", "no-such-token").returncode == 1

    issued = audit_events(server, "--action", "token.issue", "--user", "operator")
    mine = [e for e in issued if e["details"]["user"] == user]
    assert len(mine) == 2
    assert {e["source"] for e in mine} == {"cli"}
    assert all(e["request_id"] is None for e in mine)
    revoked = audit_events(server, "--action", "token.revoke")
    assert only(revoked, target=token_id)["outcome"] == "success"
    second_id = next(e["target"] for e in mine if e["target"] != token_id)
    assert only(revoked, target=second_id)["details"] == {"user": user}
    refused = only(revoked, target="no-such-token")
    assert (refused["actor"], refused["outcome"]) == ("operator", "failure")
    text = json.dumps(issued + revoked)
    assert token not in text and second not in text


def test_ssh_key_generation_and_deletion_are_audited(
    server: LiveServer, api: httpx.Client, user: str
) -> None:
    create_rid, delete_rid = rid(), rid()
    made = api.post("/ssh_keys", headers={"X-Request-ID": create_rid})
    assert made.status_code == 201, made.text
    key_id = made.json()["id"]
    assert (
        api.delete(f"/ssh_keys/{key_id}", headers={"X-Request-ID": delete_rid}).status_code == 204
    )

    events = audit_events(server, "--user", user, "--target", key_id)
    created = only(events, action="ssh_key.create")
    assert (created["actor"], created["source"], created["request_id"]) == (
        user,
        "127.0.0.1",
        create_rid,
    )
    assert created["details"]["fingerprint"].startswith("SHA256:")
    deleted = only(events, action="ssh_key.delete")
    assert (deleted["actor"], deleted["source"], deleted["request_id"]) == (
        user,
        "127.0.0.1",
        delete_rid,
    )
    assert "PRIVATE KEY" not in json.dumps(events)


def test_trigger_and_cancel_are_audited_without_input_values(
    server: LiveServer, api: httpx.Client, user: str
) -> None:
    trigger_rid, cancel_rid = rid(), rid()
    response = api.post(
        "/workflows/demo@local@sleep",
        json={"inputs": {"seconds": 86399}},
        headers={"X-Request-ID": trigger_rid},
    )
    assert response.status_code == 201, response.text
    execution_id = response.headers["location"].rsplit("/", 1)[1]
    wait_for_status(api, execution_id, {"RUNNING"})
    cancel = api.delete(f"/executions/{execution_id}", headers={"X-Request-ID": cancel_rid})
    assert cancel.status_code == 202
    wait_for_status(api, execution_id, {"CANCELLED"})

    events = audit_events(server, "--user", user, "--target", execution_id)
    trigger = only(events, action="execution.trigger")
    assert (trigger["source"], trigger["request_id"]) == ("127.0.0.1", trigger_rid)
    assert trigger["details"]["workflow_id"] == "demo@local@sleep"
    assert "86399" not in json.dumps(trigger)
    cancelled = only(events, action="execution.cancel")
    assert (cancelled["outcome"], cancelled["source"], cancelled["request_id"]) == (
        "success",
        "127.0.0.1",
        cancel_rid,
    )


def test_refused_cancels_are_audited_as_failures(
    server: LiveServer, api: httpx.Client, user: str
) -> None:
    response = api.post("/workflows/demo@local@hello")
    execution_id = response.headers["location"].rsplit("/", 1)[1]
    wait_for_status(api, execution_id, {"SUCCEEDED"})
    late_rid = rid()
    assert (
        api.delete(f"/executions/{execution_id}", headers={"X-Request-ID": late_rid}).status_code
        == 409
    )
    intruder = f"intruder-{uuid.uuid4().hex[:6]}"
    with server.client(server.token(intruder)) as other:
        assert other.delete(f"/executions/{execution_id}").status_code == 404

    (late,) = audit_events(server, "--user", user, "--action", "execution.cancel")
    assert (late["target"], late["outcome"], late["request_id"]) == (
        execution_id,
        "failure",
        late_rid,
    )
    assert "already finished" in late["details"]["reason"]
    (event,) = audit_events(server, "--user", intruder, "--action", "execution.cancel")
    assert (event["target"], event["outcome"]) == (execution_id, "failure")


def test_cluster_identity_set_and_unset_are_audited(
    server: LiveServer, api: httpx.Client, user: str
) -> None:
    key_id = api.post("/ssh_keys").json()["id"]
    set_rid, unset_rid = rid(), rid()
    saved = api.put(
        "/environments/cluster/identity",
        json={"login": "hpcuser1", "key_id": key_id},
        headers={"X-Request-ID": set_rid},
    )
    assert saved.status_code == 200, saved.text
    gone = api.delete("/environments/cluster/identity", headers={"X-Request-ID": unset_rid})
    assert gone.status_code == 204

    events = audit_events(server, "--user", user, "--target", "cluster")
    set_event = only(events, action="identity.set")
    assert set_event["details"] == {"login": "hpcuser1", "key_id": key_id}
    assert (set_event["source"], set_event["request_id"]) == ("127.0.0.1", set_rid)
    unset = only(events, action="identity.unset")
    assert (unset["source"], unset["request_id"]) == ("127.0.0.1", unset_rid)


def test_using_someone_elses_ssh_key_is_audited_as_a_failure(
    server: LiveServer, api: httpx.Client
) -> None:
    owner_key = api.post("/ssh_keys").json()["id"]
    thief = f"thief-{uuid.uuid4().hex[:6]}"
    with server.client(server.token(thief)) as other:
        registered = other.put(
            "/environments/cluster/identity", json={"login": "hpcuser1", "key_id": owner_key}
        )
        assert registered.status_code == 400
        trigger_rid = rid()
        triggered = other.post(
            "/workflows/sim@cluster@run",
            json={"inputs": {"user_id": "hpcuser1", "vault_id": owner_key}},
            headers={"X-Request-ID": trigger_rid},
        )
        assert triggered.status_code == 400

    events = audit_events(server, "--user", thief, "--outcome", "failure")
    identity = only(events, action="identity.set")
    assert identity["details"]["key_id"] == owner_key
    # The thief is told what an unknown key gets; the key's own events name its owner.
    refusal = f"no SSH key {owner_key}: generate one with `waas ssh_keys key-gen`"
    assert identity["details"]["reason"] == refusal
    trigger = only(events, action="execution.trigger")
    assert (trigger["target"], trigger["request_id"]) == (None, trigger_rid)
    assert trigger["details"]["workflow_id"] == "sim@cluster@run"
    assert trigger["details"]["reason"] == refusal
    assert audit_events(server, "--user", thief, "--outcome", "success") == []
    created = only(audit_events(server, "--target", owner_key), action="ssh_key.create")
    assert created["actor"] != thief


def test_audit_list_prints_a_readable_table_and_filters_by_time(
    server: LiveServer, user: str
) -> None:
    server.token(user)
    table = server.admin("audit", "list", "--action", "token.issue", "--since", "10m")
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[1]
    for column in ("TIME (UTC)", "ACTOR", "ACTION", "TARGET", "SOURCE", "OUTCOME", "REQUEST ID"):
        assert column in header
    assert f"user={user}" in table.stdout
    assert audit_events(server, "--action", "token.issue", "--since", "2000-01-01T00:00Z")
    assert audit_events(server, "--since", "2100-01-01T00:00Z") == []
    bad = server.admin("audit", "list", "--since", "last tuesday")
    assert bad.returncode == 1
    assert "--since 'last tuesday' is neither a time nor a duration" in bad.stderr
    assert "2026-11-25T10:00Z" in bad.stderr and "2h" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_audit_list_pages_with_a_cursor(server: LiveServer, user: str) -> None:
    for _ in range(3):
        server.token(user)
    first = server.admin("audit", "list", "-o", "json", "--action", "token.issue", "--limit", "2")
    cursor = re.search(r"--cursor (\S+)", first.stderr)
    assert cursor, first.stderr
    second = server.admin(
        "audit", "list", "-o", "json", "--action", "token.issue", "--cursor", cursor.group(1)
    )
    ids = [json.loads(line)["id"] for line in (first.stdout + second.stdout).splitlines()]
    assert len(ids) == len(set(ids)) >= 3
    assert ids == sorted(ids, reverse=True)


def test_no_secret_reaches_the_audit_log_or_the_database(server: LiveServer) -> None:
    """Passwords, tokens and private keys: grep the audit log and every file of the server."""
    name = f"dave-{uuid.uuid4().hex[:6]}"
    server.admin("users", "add", name, "--password-stdin", input_text=PASSWORD + "\n")
    with httpx.Client() as browser:
        post_login_form(browser, server.url, name, WRONG_PASSWORD)
        page = post_login_form(browser, server.url, name, PASSWORD)
    token = token_of(page)
    with server.client(token) as client:
        made = client.post("/ssh_keys").json()
        client.post("/workflows/demo@local@hello", json={"inputs": {"name": "secret-input-3e8a1c"}})
        client.delete("/auth/token")
    cli_token = server.token(name)
    secrets = [PASSWORD, WRONG_PASSWORD, token, cli_token, "PRIVATE KEY", "secret-input-3e8a1c"]

    text = server.admin("audit", "list", "--limit", "1000").stdout
    text += server.admin("audit", "list", "-o", "json", "--limit", "1000").stdout
    assert made["id"] in text and name in text  # the grep looks where the events are
    for secret in secrets:
        assert secret not in text, secret
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for secret in (PASSWORD, WRONG_PASSWORD, token, cli_token):
                assert secret.encode() not in content, (secret, path)


def test_sso_and_device_logins_and_a_failed_sso_are_audited(sso: SsoSetup) -> None:
    server = sso.start()
    assert sso.provider is not None
    sso_rid, device_rid, forged_rid = rid(), rid(), rid()
    with httpx.Client(timeout=30, headers={"X-Request-ID": sso_rid}) as client:
        page = complete_login(sso.login_url, "alice", client=client)
    assert page.status_code == 200, page.text

    started = httpx.post(server.url + "/auth/device").json()
    approve_device_code(sso.provider, started["verification_uri_complete"], "bob")
    issued = httpx.post(
        server.url + "/auth/device/token",
        json={"device_code": started["device_code"]},
        headers={"X-Request-ID": device_rid},
    )
    assert issued.status_code == 200, issued.text
    forged = httpx.get(
        server.url + "/auth/authorize",
        params={"code": "made-up", "state": "forged"},
        headers={"X-Request-ID": forged_rid},
    )
    assert forged.status_code == 400
    odd_rid, pasted = rid(), "hw_" + "x" * 43  # a client pasting a token where it should not
    odd = httpx.get(
        server.url + "/auth/authorize",
        params={"error": "access_denied", "error_description": pasted},
        headers={"X-Request-ID": odd_rid},
    )
    assert odd.status_code == 400

    events = audit_events(server, "--action", "login")
    alice = only(events, actor="alice")
    assert (alice["outcome"], alice["source"], alice["request_id"]) == (
        "success",
        "127.0.0.1",
        sso_rid,
    )
    assert alice["details"] == {"method": "sso"}
    bob = only(events, actor="bob")
    assert (bob["details"], bob["request_id"]) == ({"method": "device"}, device_rid)
    failed = only(events, outcome="failure", request_id=forged_rid)
    assert failed["actor"] == "anonymous"
    assert "another browser" in failed["details"]["reason"]
    refused = only(events, outcome="failure", request_id=odd_rid)
    assert refused["details"] == {"method": "sso", "reason": "[redacted]"}
    tokens = audit_events(server, "--action", "token.issue")
    assert {e["actor"] for e in tokens} == {"alice", "bob"}
    assert only(tokens, actor="alice")["target"] == alice["target"]
