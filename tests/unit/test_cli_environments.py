"""`waas environments` and the SDK's environment calls, against a scripted fake API."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from hpcwaas.api.errors import envelope
from hpcwaas.cli.config import ENV_VARS
from hpcwaas.cli.main import main
from hpcwaas.client import AsyncClient, Client, Forbidden, NotFound

KEY_ID = "0b5f6c1e-3d2a-4c5b-9e8f-7a6b5c4d3e2f"
CLUSTER = {
    "id": "a-cluster-with-a-rather-long-environment-id",
    "name": "A cluster whose display name is long enough to wrap",
    "kind": "slurm",
    "host": "login.cluster.example.org",
    "identity": {"login": "jdoe", "key_id": KEY_ID},
}
LOCAL = {"id": "local", "name": "Local [host]", "kind": "local", "host": None, "identity": None}


@dataclass
class FakeApi:
    """Answers (method, path) with a scripted status and body; records every request."""

    routes: dict[tuple[str, str], tuple[int, object]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, status: int, body: object = None) -> None:
        self.routes[(method, path)] = (status, body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body = self.routes.get(
            (request.method, request.url.path), (404, envelope(404, "no route"))
        )
        if body is None:
            return httpx.Response(status)
        return httpx.Response(status, json=body)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


Waas = Callable[..., Result]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def waas(
    api: FakeApi,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Waas]:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HW_ACCESS_TOKEN", "tok")

    def run(*argv: str) -> Result:
        code = main(list(argv), transport=httpx.MockTransport(api))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    yield run


# --- list ------------------------------------------------------------------------------------


def test_list_prints_a_table_with_the_six_columns_and_the_identity(
    waas: Waas, api: FakeApi
) -> None:
    api.on("GET", "/environments", 200, {"environments": [CLUSTER, LOCAL]})
    result = waas("environments", "list")
    assert result.code == 0
    header = result.lines[0]
    for column in ("Environment", "Name", "Kind", "Host", "Login", "SSH key ID"):
        assert column in header
    assert KEY_ID in result.out
    assert "jdoe" in result.out
    assert "login.cluster.example.org" in result.out
    assert "Local [host]" in result.out  # not eaten as markup
    [local_row] = [line for line in result.lines if line.startswith("local ")]
    assert "None" not in local_row


def test_list_never_cuts_the_environment_or_key_id_on_a_narrow_terminal(
    waas: Waas, api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.on("GET", "/environments", 200, {"environments": [CLUSTER, LOCAL]})
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setenv("COLUMNS", "40")
    assert waas("env", "ls").code == 0
    text = terminal.getvalue()
    assert str(CLUSTER["id"]) in text
    assert KEY_ID in text


def test_list_json_is_exactly_the_array(waas: Waas, api: FakeApi) -> None:
    api.on("GET", "/environments", 200, {"environments": [CLUSTER, LOCAL]})
    result = waas("-o", "json", "envs", "list")
    assert json.loads(result.out) == [CLUSTER, LOCAL]
    assert result.err == ""


def test_no_environments_says_so_in_text_and_is_an_empty_array_in_json(
    waas: Waas, api: FakeApi
) -> None:
    api.on("GET", "/environments", 200, {"environments": []})
    assert waas("environment", "ls").out == "No environments found.\n"
    assert waas("environment", "ls", "-o", "json").out == "[]\n"


# --- set-identity / unset-identity -----------------------------------------------------------


def test_set_identity_puts_login_and_key_and_says_how_steps_will_run(
    waas: Waas, api: FakeApi
) -> None:
    api.on("PUT", "/environments/cluster/identity", 200, {**CLUSTER, "id": "cluster"})
    result = waas("environments", "set-identity", "cluster", "--login", "jdoe", "--key", KEY_ID)
    assert result.code == 0
    assert result.out == f"Environment cluster: steps will run as jdoe with SSH key {KEY_ID}\n"
    [request] = api.requests
    assert json.loads(request.content) == {"login": "jdoe", "key_id": KEY_ID}
    assert request.headers["Authorization"] == "Bearer tok"


def test_set_identity_json_prints_the_environment(waas: Waas, api: FakeApi) -> None:
    api.on("PUT", "/environments/cluster/identity", 200, {**CLUSTER, "id": "cluster"})
    result = waas("-o", "json", "env", "set-identity", "cluster", "--login", "jdoe", "--key", "k")
    assert json.loads(result.out) == {**CLUSTER, "id": "cluster"}


@pytest.mark.parametrize(
    "argv",
    [
        ("env", "set-identity", "cluster", "--key", "k"),
        ("env", "set-identity", "cluster", "--login", "jdoe"),
        ("env", "set-identity", "--login", "jdoe", "--key", "k"),
    ],
)
def test_set_identity_without_environment_login_or_key_is_a_usage_error(
    waas: Waas, api: FakeApi, argv: tuple[str, ...]
) -> None:
    result = waas(*argv)
    assert result.code == 1
    assert "usage: waas environments set-identity" in result.err
    assert api.requests == []


def test_set_identity_refused_by_the_api_prints_the_error_and_exits_1(
    waas: Waas, api: FakeApi
) -> None:
    detail = f"no SSH key {KEY_ID}: generate one with `waas ssh_keys key-gen`"
    api.on("PUT", "/environments/cluster/identity", 400, envelope(400, detail))
    result = waas("env", "set-identity", "cluster", "--login", "jdoe", "--key", KEY_ID)
    assert result.code == 1
    assert result.out == ""
    assert result.err.splitlines() == [f"Error: bad_request (400): {detail}"]


def test_unset_identity_deletes_it_and_says_so(waas: Waas, api: FakeApi) -> None:
    api.on("DELETE", "/environments/cluster/identity", 204)
    result = waas("environments", "unset-identity", "cluster")
    assert result.code == 0
    assert result.out == "Environment cluster: no cluster account registered any more\n"
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("DELETE", "/environments/cluster/identity")
    ]


def test_unset_identity_when_none_is_registered_exits_1(waas: Waas, api: FakeApi) -> None:
    detail = "no cluster account registered on environment 'cluster'"
    api.on("DELETE", "/environments/cluster/identity", 404, envelope(404, detail))
    result = waas("env", "unset-identity", "cluster")
    assert result.code == 1
    assert f"Error: not_found (404): {detail}" in result.err


def test_help_lists_the_environments_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "environments"]) == 0
    out = capsys.readouterr().out
    for command in ("list (ls)", "set-identity", "unset-identity"):
        assert command in out


# --- SDK -------------------------------------------------------------------------------------


def test_sdk_environment_calls_use_the_environment_routes(api: FakeApi) -> None:
    api.on("GET", "/environments", 200, {"environments": [CLUSTER]})
    api.on("GET", "/environments/a b", 200, CLUSTER)
    api.on("PUT", "/environments/a b/identity", 200, CLUSTER)
    api.on("DELETE", "/environments/a b/identity", 204)
    with Client("https://h", token="t", transport=httpx.MockTransport(api)) as client:
        [listed] = client.list_environments().environments
        assert listed.identity is not None and listed.identity.key_id == KEY_ID
        assert client.get_environment("a b").id == CLUSTER["id"]
        assert client.set_identity("a b", "jdoe", KEY_ID).kind == "slurm"
        client.delete_identity("a b")
    assert [(r.method, r.url.raw_path) for r in api.requests] == [
        ("GET", b"/environments"),
        ("GET", b"/environments/a%20b"),
        ("PUT", b"/environments/a%20b/identity"),
        ("DELETE", b"/environments/a%20b/identity"),
    ]


def test_sdk_raises_typed_errors_for_refused_identities(api: FakeApi) -> None:
    api.on("PUT", "/environments/cluster/identity", 403, envelope(403, "not yours"))
    api.on("DELETE", "/environments/cluster/identity", 404, envelope(404, "none"))
    with Client("https://h", transport=httpx.MockTransport(api)) as client:
        with pytest.raises(Forbidden):
            client.set_identity("cluster", "jdoe", "k")
        with pytest.raises(NotFound):
            client.delete_identity("cluster")


async def test_async_sdk_sends_the_same_requests_as_the_sync_one(api: FakeApi) -> None:
    api.on("GET", "/environments", 200, {"environments": [CLUSTER, LOCAL]})
    api.on("PUT", "/environments/cluster/identity", 200, CLUSTER)
    api.on("DELETE", "/environments/cluster/identity", 204)
    async with AsyncClient("https://h", token="t", transport=httpx.MockTransport(api)) as aclient:
        assert len((await aclient.list_environments()).environments) == 2
        await aclient.set_identity("cluster", "jdoe", KEY_ID)
        await aclient.delete_identity("cluster")
    async_requests = list(api.requests)
    api.requests.clear()
    with Client("https://h", token="t", transport=httpx.MockTransport(api)) as client:
        client.list_environments()
        client.set_identity("cluster", "jdoe", KEY_ID)
        client.delete_identity("cluster")
    assert [(r.method, r.url, r.content) for r in async_requests] == [
        (r.method, r.url, r.content) for r in api.requests
    ]
