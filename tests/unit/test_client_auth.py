"""The SDK's login calls: auth config, device login, logout, whoami (sync and async)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from hpcwaas.api.errors import envelope
from hpcwaas.api.models import DevicePending, TokenIssued
from hpcwaas.client import AsyncClient, BadRequest, Client, Unauthorized, calls

ISSUED = {
    "access_token": "tok-1",
    "expires_at": "2030-01-02T03:04:05Z",
    "user_id": "alice",
}
DEVICE = {
    "device_code": "dev-1",
    "user_code": "ABCD-EFGH",
    "verification_uri": "https://idp.example/device",
    "expires_in": 600,
    "interval": 5,
}


class Recorder:
    def __init__(self, status: int = 200, body: object = None) -> None:
        self.status = status
        self.body = body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.body is None:
            return httpx.Response(self.status)
        return httpx.Response(self.status, json=self.body)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def client(api: Recorder, token: str | None = None) -> Client:
    return Client("https://api.example", token=token, transport=httpx.MockTransport(api))


def test_auth_info_reads_the_public_auth_config() -> None:
    api = Recorder(body={"auth_type": "sso", "login_url": "/auth/login", "device_flow": True})
    info = client(api).auth_info()
    assert (api.last.method, api.last.url.path) == ("GET", "/auth/config")
    assert "authorization" not in api.last.headers
    assert (info.auth_type, info.login_url, info.device_flow) == ("sso", "/auth/login", True)


def test_start_device_login_posts_without_a_body() -> None:
    api = Recorder(body=DEVICE)
    auth = client(api).start_device_login()
    assert (api.last.method, api.last.url.path) == ("POST", "/auth/device")
    assert api.last.content == b""
    assert (auth.user_code, auth.verification_uri_complete, auth.interval) == ("ABCD-EFGH", None, 5)


def test_start_device_login_on_a_server_without_it_is_a_bad_request() -> None:
    api = Recorder(400, envelope(400, "open https://api.example/auth/login to log in"))
    with pytest.raises(BadRequest, match="auth/login"):
        client(api).start_device_login()


def test_poll_device_login_returns_pending_on_202() -> None:
    api = Recorder(202, {"status": "slow_down", "interval": 10})
    answer = client(api).poll_device_login("dev-1")
    assert (api.last.method, api.last.url.path) == ("POST", "/auth/device/token")
    assert json.loads(api.last.content) == {"device_code": "dev-1"}
    assert answer == DevicePending(status="slow_down", interval=10)


def test_poll_device_login_returns_the_token_once_confirmed() -> None:
    answer = client(Recorder(200, ISSUED)).poll_device_login("dev-1")
    assert isinstance(answer, TokenIssued)
    assert answer.access_token == "tok-1"
    assert answer.token_type == "Bearer"
    assert answer.expires_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_poll_device_login_raises_bad_request_when_denied_or_expired() -> None:
    api = Recorder(400, envelope(400, "expired_token: the device code has expired"))
    with pytest.raises(BadRequest) as caught:
        client(api).poll_device_login("dev-1")
    assert caught.value.errors[0].detail == "expired_token: the device code has expired"


def test_logout_deletes_the_token_it_is_sent_with() -> None:
    api = Recorder(204)
    assert client(api, token="tok-1").logout() is None
    assert (api.last.method, api.last.url.path) == ("DELETE", "/auth/token")
    assert api.last.headers["authorization"] == "Bearer tok-1"


def test_logout_with_an_expired_token_is_unauthorized() -> None:
    api = Recorder(401, envelope(401, "You are not logged in or your session has expired"))
    with pytest.raises(Unauthorized):
        client(api, token="old").logout()


def test_whoami_reads_the_user_and_accepts_null_groups() -> None:
    api = Recorder(body={"user_id": "alice", "groups": None, "email": "a@example.org"})
    user = client(api, token="tok-1").whoami()
    assert (api.last.method, api.last.url.path) == ("GET", "/users/me")
    assert (user.user_id, user.groups, user.email) == ("alice", [], "a@example.org")
    assert user.token_expires_at is None


def test_poll_call_is_built_without_io() -> None:
    call = calls.poll_device_login("dev-1")
    assert (call.method, call.path, call.json) == (
        "POST",
        "/auth/device/token",
        {"device_code": "dev-1"},
    )
    pending = call.parse(
        httpx.Response(202, json={"status": "authorization_pending", "interval": 5})
    )
    assert isinstance(pending, DevicePending)


async def test_async_client_has_the_same_login_calls() -> None:
    api = Recorder(202, {"status": "authorization_pending", "interval": 5})
    async with AsyncClient(
        "https://api.example", token="tok-1", transport=httpx.MockTransport(api)
    ) as aclient:
        assert isinstance(await aclient.poll_device_login("dev-1"), DevicePending)
        api.status, api.body = 200, {"user_id": "alice", "groups": ["g"]}
        assert (await aclient.whoami()).groups == ["g"]
        api.body = {"auth_type": "basic", "login_url": "/auth/login", "device_flow": False}
        assert (await aclient.auth_info()).auth_type == "basic"
        api.body = DEVICE
        assert (await aclient.start_device_login()).device_code == "dev-1"
        api.status, api.body = 204, None
        assert await aclient.logout() is None
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("POST", "/auth/device/token"),
        ("GET", "/users/me"),
        ("GET", "/auth/config"),
        ("POST", "/auth/device"),
        ("DELETE", "/auth/token"),
    ]
