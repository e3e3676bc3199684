"""Checked tokens are remembered for auth.token_cache_seconds, and revocations still work."""

from __future__ import annotations

import time

import httpx
from tests.conftest import LiveServer


def _status(server: LiveServer, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(server.url + "/workflows", headers=headers).status_code


def test_logout_refuses_a_token_at_once_though_it_was_just_used(
    fresh_server: LiveServer,
) -> None:
    fresh_server.env["HPCWAAS_AUTH__TOKEN_CACHE_SECONDS"] = "60"
    fresh_server.start()
    token = fresh_server.token("leaving-user")
    assert _status(fresh_server, token) == 200
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.delete(fresh_server.url + "/auth/token", headers=headers).status_code == 204
    assert _status(fresh_server, token) == 401


def test_a_token_revoked_from_the_command_line_is_refused_within_the_cache_seconds(
    fresh_server: LiveServer,
) -> None:
    fresh_server.env["HPCWAAS_AUTH__TOKEN_CACHE_SECONDS"] = "1"
    fresh_server.start()
    token = fresh_server.token("revoked-elsewhere")
    assert _status(fresh_server, token) == 200
    assert fresh_server.admin("tokens", "revoke", "--user", "revoked-elsewhere").returncode == 0
    time.sleep(1.2)
    assert _status(fresh_server, token) == 401
