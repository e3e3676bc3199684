"""Secrets never leak: canaries through a whole session, searched in everything that comes out.

A real server whose config holds a canary password (a basic account) and a canary metrics
token; a token issued for the user; a canary-looking bearer token that the server never
issued; SSH key pairs generated through the API and the CLI (their private halves, read
back from the key store by the server's own code, are canaries too). Then: the original user guide's
section 1 CLI lines, workflows run, the login form (right password, then a variant of
it), wrong basic and bearer credentials, /metrics. Every API response (body and headers),
every CLI output, the server log, the SQLite database and every other file the server
wrote under its data directory must hold none of the canaries. (The database keeps the
SHA-256 of each token: expected, and not a canary.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import BIN, LiveServer, free_port, post_login_form, wait_for_status

from hpcwaas.secrets.base import ssh_key_path
from hpcwaas.secrets.embedded import EmbeddedKeyStore, load_or_create_master_key
from hpcwaas.store.database import Database

PASSWORD = "canary-pw-" + secrets.token_hex(12)
METRICS_TOKEN = "canary-metrics-" + secrets.token_hex(12)
# Shaped like this server's tokens, but never issued by it.
FAKE_BEARER = "hw_" + secrets.token_urlsafe(32)


class Recorder:
    """Every HTTP response's status line, headers and body, and every CLI output."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def response(self, response: httpx.Response) -> None:
        response.read()
        self.texts.append(f"{response.status_code} {response.request.url}")
        self.texts += [f"{k}: {v}" for k, v in response.headers.items()]
        self.texts.append(response.text)

    def cli(self, result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
        self.texts += [result.stdout, result.stderr]
        return result


@pytest.fixture
def hygiene(tmp_path: Path) -> Iterator[tuple[LiveServer, Recorder]]:
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "auth": {
                    "auth_type": "basic",
                    "basic_auth": {"accounts": [{"username": "alice", "password": PASSWORD}]},
                },
                "metrics_token": METRICS_TOKEN,
            }
        )
    )
    live = LiveServer(tmp_path / "data", free_port(), extra_args=["--config", str(config)])
    live.start()
    yield live, Recorder()
    live.stop()


def _client(live: LiveServer, recorder: Recorder, **kwargs: object) -> httpx.Client:
    return httpx.Client(
        base_url=live.url,
        timeout=30,
        event_hooks={"response": [recorder.response]},
        **kwargs,  # type: ignore[arg-type]
    )


def _waas(live: LiveServer, home: Path, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    env.pop("HW_ACCESS_TOKEN", None)
    return subprocess.run(
        [str(BIN / "waas"), "--api_url", live.url, f"-t={token}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


async def _private_keys(live: LiveServer, key_ids: list[str]) -> list[str]:
    """The private halves, read back the way the server reads them."""
    db = Database(f"sqlite+aiosqlite:///{live.data_dir / 'hpcwaas.sqlite3'}")
    store = EmbeddedKeyStore(db, load_or_create_master_key(live.data_dir / "master.key"))
    try:
        found = []
        for key_id in key_ids:
            secret = await store.get(ssh_key_path(key_id))
            assert secret is not None, key_id
            found.append(secret["privateKey"])
        return found
    finally:
        await db.dispose()


def _body_lines(pem: str) -> list[str]:
    """The base64 lines of a PEM (its header and footer are the same in every key)."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def test_no_password_token_or_private_key_leaks_into_responses_outputs_logs_or_files(
    hygiene: tuple[LiveServer, Recorder], tmp_path: Path
) -> None:
    live, recorder = hygiene
    token = live.token("alice")
    home = tmp_path / "home"
    home.mkdir()
    key_ids: list[str] = []
    with _client(live, recorder, headers={"Authorization": f"Bearer {token}"}) as api:
        for key_type in ("rsa", "ed25519", "rsa4096"):
            made = api.post("/ssh_keys", json={"type": key_type, "metadata": {"note": "x"}})
            assert made.status_code == 201, made.text
            key_ids.append(made.json()["id"])
        # The original user guide's lines (docs/compatibility.md, "The waas command").
        keygen = recorder.cli(_waas(live, home, token, "ssh_keys", "key-gen"))
        assert keygen.returncode == 0, keygen.stderr
        key_ids.append(re.search(r"SSH key ID:\s+(\S+)", keygen.stdout).group(1))  # type: ignore[union-attr]
        assert recorder.cli(_waas(live, home, token, "workflows", "list")).returncode == 0
        run = recorder.cli(
            _waas(
                live,
                home,
                token,
                "workflows",
                "trigger",
                "-f",
                "-i",
                "name=Ada",
                "demo@local@hello",
            )
        )
        assert run.returncode == 0, run.stdout + run.stderr
        execution_id = re.search(r"execution ID: (\S+)", run.stdout).group(1)  # type: ignore[union-attr]
        assert (
            recorder.cli(_waas(live, home, token, "executions", "status", execution_id)).returncode
            == 0
        )
        recorder.cli(_waas(live, home, token, "executions", "logs", execution_id))
        sleeping = api.post("/workflows/demo@local@sleep", json={"inputs": {"seconds": 30}})
        sleeping_id = sleeping.headers["location"].rsplit("/", 1)[1]
        assert (
            recorder.cli(_waas(live, home, token, "executions", "cancel", sleeping_id)).returncode
            == 0
        )
        recorder.cli(_waas(live, home, token, "help"))
        wait_for_status(api, sleeping_id, {"CANCELLED"})
        api.get("/ssh_keys")
        api.get("/users/me")
        api.get(f"/executions/{execution_id}/logs", params={"levels": 15})
        api.get("/executions")
        api.get("/environments")

    with _client(live, recorder) as anonymous:
        login = post_login_form(anonymous, "", "alice", PASSWORD)
        assert login.status_code == 200, login.text
        form_token = re.search(r'id="token"[^>]*>\s*([^<\s]+)', login.text).group(1)  # type: ignore[union-attr]
        wrong = post_login_form(anonymous, "", "alice", PASSWORD + "-typo")
        assert wrong.status_code == 401
        basic = base64.b64encode(f"alice:{PASSWORD}-typo".encode()).decode()
        assert (
            anonymous.get("/workflows", headers={"Authorization": f"Basic {basic}"}).status_code
            == 401
        )
        assert (
            anonymous.get(
                "/workflows", headers={"Authorization": f"Bearer {FAKE_BEARER}"}
            ).status_code
            == 401
        )
        assert anonymous.get("/metrics").status_code == 401
        assert (
            anonymous.get(
                "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"}
            ).status_code
            == 401
        )
        assert (
            anonymous.get(
                "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
            ).status_code
            == 200
        )
        assert (
            anonymous.get(
                "/workflows", headers={"Authorization": f"Bearer {form_token}"}
            ).status_code
            == 200
        )

    private_lines = [
        line for pem in asyncio.run(_private_keys(live, key_ids)) for line in _body_lines(pem)
    ]
    assert len(private_lines) > 4 * 3
    live.stop()  # everything flushed to disk

    canaries = {
        "the account password": PASSWORD,
        "a mistyped password": PASSWORD + "-typo",
        "the metrics token": METRICS_TOKEN,
        "a bearer token never issued": FAKE_BEARER,
        "the user's token": token,
        **{f"private key line {i}": line for i, line in enumerate(private_lines)},
    }
    outputs = "\n".join(recorder.texts)
    # The login page shows the token it issued, once: that token is a canary everywhere else.
    stored = {"server log": live.log_path.read_bytes()}
    for path in sorted(live.data_dir.rglob("*")):
        if path.is_file():
            stored[str(path.relative_to(live.data_dir))] = path.read_bytes()
    assert any(name.startswith("hpcwaas.sqlite3") for name in stored), sorted(stored)
    for what, canary in canaries.items():
        assert canary not in outputs, f"{what} appears in an API response or CLI output"
        for where, data in stored.items():
            assert canary.encode() not in data, f"{what} appears in {where}"
    for where, data in stored.items():
        assert form_token.encode() not in data, f"the form's token appears in {where}"
