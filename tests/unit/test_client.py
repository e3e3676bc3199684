"""The SDK: requests it sends and how it reads answers, for the sync and async clients."""

from __future__ import annotations

import inspect
import json
import ssl
import typing
from collections.abc import Callable

import httpx
import pytest

from hpcwaas.api import models
from hpcwaas.api.errors import envelope
from hpcwaas.api.states import ExecutionStatus
from hpcwaas.client import (
    AsyncClient,
    Client,
    ConfigurationError,
    ConnectionOptions,
    NotFound,
    UnexpectedResponse,
    calls,
)

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records requests and answers with a fixed response."""

    def __init__(self, status: int = 200, **response: object) -> None:
        self.status = status
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, **self.response)  # type: ignore[arg-type]

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def sync_client(handler: Handler, **options: object) -> Client:
    return Client("https://api.example:9090", transport=httpx.MockTransport(handler), **options)  # type: ignore[arg-type]


WORKFLOW = {
    "id": "demo@local@hello",
    "name": "hello",
    "application_id": "demo",
    "environment_id": "local",
    "environment_name": "Local",
}


def test_token_is_sent_as_bearer_authorization() -> None:
    api = Recorder(json={"workflows": []})
    sync_client(api, token="tok-123").list_workflows()
    assert api.last.headers["Authorization"] == "Bearer tok-123"


def test_user_and_password_are_sent_as_basic_authorization() -> None:
    api = Recorder(json={"workflows": []})
    sync_client(api, user="alice", password="s3:cret").list_workflows()
    assert api.last.headers["Authorization"] == httpx.BasicAuth("alice", "s3:cret")._auth_header


def test_list_workflows_sends_limit_and_cursor_only_when_given() -> None:
    api = Recorder(json={"workflows": [WORKFLOW], "next_cursor": "c2"})
    client = sync_client(api)
    result = client.list_workflows()
    assert api.last.method == "GET"
    assert api.last.url.path == "/workflows"
    assert not api.last.url.query
    assert result.workflows[0].id == "demo@local@hello"
    assert result.next_cursor == "c2"
    client.list_workflows(limit=5, cursor="c2")
    assert dict(api.last.url.params) == {"limit": "5", "cursor": "c2"}


def test_null_list_from_the_original_server_reads_as_empty() -> None:
    api = Recorder(json={"workflows": None})
    assert sync_client(api).list_workflows().workflows == []


def test_base_url_path_prefix_is_kept() -> None:
    api = Recorder(json={"workflows": []})
    Client("https://host/hpcwaas", transport=httpx.MockTransport(api)).list_workflows()
    assert api.last.url.path == "/hpcwaas/workflows"


def test_trigger_posts_inputs_and_returns_id_from_location_header() -> None:
    api = Recorder(201, headers={"Location": "/executions/ex-42"})
    execution_id = sync_client(api).trigger("demo@local@hello", {"name": "a=b,c=d"})
    assert execution_id == "ex-42"
    assert api.last.method == "POST"
    assert api.last.url.path == "/workflows/demo@local@hello"
    assert json.loads(api.last.content) == {"inputs": {"name": "a=b,c=d"}}


def test_trigger_accepts_an_absolute_location_url() -> None:
    api = Recorder(201, headers={"Location": "https://api.example:9090/executions/ex-7/"})
    assert sync_client(api).trigger("demo@local@hello", {}) == "ex-7"


def test_trigger_without_location_is_an_unexpected_response() -> None:
    api = Recorder(201)
    with pytest.raises(UnexpectedResponse, match="Location"):
        sync_client(api).trigger("demo@local@hello", {})


def test_trigger_with_a_location_that_is_not_an_execution_is_rejected() -> None:
    api = Recorder(201, headers={"Location": "/workflows/x"})
    with pytest.raises(UnexpectedResponse, match="does not name an execution"):
        sync_client(api).trigger("demo@local@hello", {})


def test_ids_are_quoted_into_a_single_path_segment() -> None:
    api = Recorder(json={"id": "a/b?c", "status": "RUNNING"})
    sync_client(api).get_execution("a/b?c")
    assert api.last.url.raw_path == b"/executions/a%2Fb%3Fc"


def test_get_execution_parses_status_and_steps() -> None:
    body = {
        "id": "ex-1",
        "status": "RUNNING",
        "steps": [{"name": "greet", "state": "RUNNING"}],
    }
    execution = sync_client(Recorder(json=body)).get_execution("ex-1")
    assert execution.status is ExecutionStatus.RUNNING
    assert execution.steps is not None and execution.steps[0].name == "greet"


def test_cancel_sends_delete_and_accepts_202() -> None:
    api = Recorder(202)
    assert sync_client(api).cancel("ex-1") is None
    assert (api.last.method, api.last.url.path) == ("DELETE", "/executions/ex-1")


def test_remove_execution_data_sends_delete_on_data_and_reads_what_was_removed() -> None:
    body = {
        "id": "ex-1",
        "status": "SUCCEEDED",
        "data_removed": {"logs": {"at": "2026-11-25T12:00:00Z", "by": "alice"}},
    }
    api = Recorder(json=body)
    execution = sync_client(api).remove_execution_data("ex-1")
    assert (api.last.method, api.last.url.path) == ("DELETE", "/executions/ex-1/data")
    assert execution.data_removed is not None
    assert execution.data_removed["logs"].by == "alice"


async def test_async_remove_execution_data_sends_the_same_request() -> None:
    api = Recorder(json={"id": "ex-1", "status": "FAILED"})
    client = AsyncClient("https://api.example:9090", transport=httpx.MockTransport(api))
    async with client:
        execution = await client.remove_execution_data("ex/1")
    assert (api.last.method, api.last.url.raw_path) == ("DELETE", b"/executions/ex%2F1/data")
    assert execution.data_removed is None


def test_logs_sends_from_size_levels_and_timeout_as_go_duration() -> None:
    api = Recorder(json={"logs": [], "total_results": 0, "from": 3})
    result = sync_client(api).logs("ex-1", from_=3, size=50, timeout=30, levels=15)
    assert api.last.url.path == "/executions/ex-1/logs"
    assert dict(api.last.url.params) == {
        "from": "3",
        "size": "50",
        "timeout": "30s",
        "levels": "15",
    }
    assert result.from_ == 3


def test_logs_fractional_timeout_is_sent_in_milliseconds() -> None:
    api = Recorder(json={"logs": [], "total_results": 0, "from": 0})
    sync_client(api).logs("ex-1", timeout=1.5)
    assert api.last.url.params["timeout"] == "1500ms"


def test_logs_long_poll_reads_longer_than_the_requested_wait() -> None:
    api = Recorder(json={"logs": [], "total_results": 0, "from": 0})
    client = sync_client(api, timeout=20)
    client.logs("ex-1", timeout=120)
    assert api.last.extensions["timeout"]["read"] > 120
    assert api.last.extensions["timeout"]["connect"] == 10.0
    client.logs("ex-1")  # the server's default wait is one minute
    assert api.last.extensions["timeout"]["read"] > 60


def test_ordinary_requests_use_the_default_timeouts() -> None:
    api = Recorder(json={"workflows": []})
    sync_client(api).list_workflows()
    assert api.last.extensions["timeout"] == {
        "connect": 10.0,
        "read": 30.0,
        "write": 30.0,
        "pool": 30.0,
    }


def test_create_ssh_key_sends_metadata_and_returns_public_key() -> None:
    api = Recorder(201, json={"id": "k-1", "public_key": "ssh-rsa AAAA\n"})
    key = sync_client(api).create_ssh_key({"cluster": "mn5"})
    assert json.loads(api.last.content) == {"metadata": {"cluster": "mn5"}}
    assert (key.id, key.public_key) == ("k-1", "ssh-rsa AAAA\n")


def test_list_and_delete_ssh_keys_use_the_keys_routes() -> None:
    api = Recorder(json={"ssh_keys": []})
    client = sync_client(api)
    assert client.list_ssh_keys(limit=2).ssh_keys == []
    assert api.last.url.path == "/ssh_keys" and api.last.url.params["limit"] == "2"
    api.status, api.response = 204, {}
    client.delete_ssh_key("k-1")
    assert (api.last.method, api.last.url.path) == ("DELETE", "/ssh_keys/k-1")


def test_get_workflow_reads_the_input_schema() -> None:
    body = {
        **WORKFLOW,
        "inputs": [{"name": "name", "type": "string", "required": False, "default": "world"}],
        "steps": ["greet"],
        "outputs": [],
    }
    workflow = sync_client(Recorder(json=body)).get_workflow("demo@local@hello")
    assert workflow.inputs[0].default == "world"


def test_a_success_body_that_is_not_the_model_is_an_unexpected_response() -> None:
    with pytest.raises(UnexpectedResponse, match="WorkflowList"):
        sync_client(Recorder(json={"nope": 1})).list_workflows()
    with pytest.raises(UnexpectedResponse, match="not JSON"):
        sync_client(Recorder(text="<html>")).list_workflows()


def test_url_without_scheme_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        Client("127.0.0.1:9090")


def test_token_and_user_together_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="either a token or a user"):
        Client("https://h", token="t", user="u")


def test_missing_ca_file_is_a_configuration_error(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="TLS files"):
        Client("https://h", ca_file=str(tmp_path / "missing.pem"))


async def test_async_client_sends_the_same_requests_as_the_sync_one() -> None:
    api = Recorder(201, headers={"Location": "/executions/ex-9"})
    async with AsyncClient(
        "https://api.example:9090", token="t", transport=httpx.MockTransport(api)
    ) as client:
        assert await client.trigger("demo@local@hello", {"a": "1"}) == "ex-9"
    async_request = api.last
    sync_client(api, token="t").trigger("demo@local@hello", {"a": "1"})
    sync_request = api.last
    assert async_request.method == sync_request.method
    assert async_request.url == sync_request.url
    assert async_request.content == sync_request.content
    assert async_request.headers["Authorization"] == sync_request.headers["Authorization"]


async def test_async_logs_parses_the_page() -> None:
    entry = {"level": "INFO", "timestamp": "2024-05-01T10:00:00Z", "content": "hi"}
    api = Recorder(json={"logs": [entry], "total_results": 1, "from": 0})
    async with AsyncClient("https://h", transport=httpx.MockTransport(api)) as client:
        page = await client.logs("ex-1", timeout=5)
    assert [e.content for e in page.logs] == ["hi"]
    assert api.last.url.params["timeout"] == "5s"


# --- reading the JSON without the models (send_json) ---------------------------------------


def test_send_json_gives_the_decoded_body_to_the_reader() -> None:
    api = Recorder(json={"workflows": None, "next_cursor": None})
    body = sync_client(api).send_json(calls.list_workflows(), lambda data: data)
    # A null list reads as [], as it does for the model.
    assert body == {"workflows": [], "next_cursor": None}
    assert api.last.url.path == "/workflows"


def test_send_json_reports_a_body_the_reader_rejects_as_an_unexpected_response() -> None:
    def reader(data: object) -> object:
        raise ValueError("workflows[0].id should be a string")

    api = Recorder(json={"workflows": [{}]})
    with pytest.raises(UnexpectedResponse) as caught:
        sync_client(api).send_json(calls.list_workflows(), reader)
    assert str(caught.value) == (
        "unexpected response (HTTP 200): the body is not a valid WorkflowList: "
        "workflows[0].id should be a string"
    )
    with pytest.raises(UnexpectedResponse, match="not JSON"):
        sync_client(Recorder(text="<html>")).send_json(calls.list_workflows(), reader)


def test_send_json_raises_the_typed_error_of_an_error_status() -> None:
    api = Recorder(404, json=envelope(404, "no workflow demo@local@nope"))
    with pytest.raises(NotFound, match="no workflow demo@local@nope"):
        sync_client(api).send_json(calls.get_workflow("demo@local@nope"), lambda data: data)


def test_send_json_refuses_a_call_whose_answer_is_not_a_json_body() -> None:
    api = Recorder(202)
    with pytest.raises(TypeError, match="no JSON body"):
        sync_client(api).send_json(calls.cancel("ex-1"), lambda data: data)


async def test_async_send_json_reads_the_same_body() -> None:
    api = Recorder(json={"workflows": [WORKFLOW]})
    async with AsyncClient("https://h", transport=httpx.MockTransport(api)) as client:
        body = await client.send_json(calls.list_workflows(), lambda data: data)
    assert body == {"workflows": [WORKFLOW]}


def test_each_call_parses_into_the_model_its_signature_names() -> None:
    # The calls name their models (imported on the first parse): a wrong name would only
    # show when that call is parsed.
    namespace = {**vars(calls), **vars(models)}
    checked = 0
    for builder in vars(calls).values():
        if not inspect.isfunction(builder) or builder.__module__ != calls.__name__:
            continue
        returns = typing.get_type_hints(builder, namespace).get("return")
        if typing.get_origin(returns) is not calls.Call:
            continue
        required = [
            p for p in inspect.signature(builder).parameters.values() if p.default is p.empty
        ]
        call = builder(*("x" for _ in required))
        if isinstance(call.parse_success, calls.ModelBody):
            (model,) = typing.get_args(returns)
            assert getattr(models, call.parse_success.model) is model, builder.__name__
            checked += 1
    assert checked >= 15


# --- TLS ----------------------------------------------------------------------------------


def test_an_http_client_reads_no_ca_bundle_and_would_refuse_any_certificate() -> None:
    # Its requests all go to the plain-HTTP base URL: loading the CA bundle would only slow
    # the start, and an https:// request made anyway must not be trusted.
    context = ConnectionOptions("http://127.0.0.1:9090").ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.cert_store_stats()["x509_ca"] == 0
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert ConnectionOptions("https://127.0.0.1:9090").ssl_context() is True
