"""`waas login`, `logout`, `whoami`: device and paste logins, the saved token, the 401 hint."""

from __future__ import annotations

import getpass
import io
import json
import stat
import sys
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from tests.unit.fake_api import Answer, FakeApi, reply

from hpcwaas.api.errors import envelope
from hpcwaas.cli.config import ENV_VARS
from hpcwaas.cli.main import main

TOKEN = "tok-SECRET-4f9a2c"
API = "https://waas.example"
ISSUED = {
    "access_token": TOKEN,
    "token_type": "Bearer",
    "expires_at": "2030-01-02T03:04:05Z",
    "user_id": "alice-sub",
    "display_name": "Alice Doe",
}
USER = {
    "user_id": "alice-sub",
    "display_name": "Alice Doe",
    "email": "alice@example.org",
    "groups": ["eflows", "hpc"],
    "token_expires_at": "2030-01-02T03:04:05Z",
}


def device(expires_in: int = 600, interval: int = 2, complete: bool = True) -> Answer:
    body = {
        "device_code": "dev-code-1",
        "user_code": "WDJB-MJHT",
        "verification_uri": f"{API}/auth/device/verify",
        "verification_uri_complete": f"{API}/auth/device/verify?user_code=WDJB-MJHT"
        if complete
        else None,
        "expires_in": expires_in,
        "interval": interval,
    }
    return reply(200, body)


def pending(status: str = "authorization_pending", interval: int = 2) -> Answer:
    return reply(202, {"status": status, "interval": interval})


class LoginApi(FakeApi):
    """The fake API, with the two ways the server can offer logins."""

    def device_flow(self) -> LoginApi:
        body = {"auth_type": "sso", "login_url": "/auth/login", "device_flow": True}
        return self.on("GET", "/auth/config", reply(200, body))

    def paste_flow(self) -> LoginApi:
        body = {"auth_type": "sso", "login_url": "/auth/login", "device_flow": False}
        return self.on("GET", "/auth/config", reply(200, body))


@dataclass
class Result:
    code: int
    out: str
    err: str


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@dataclass
class Env:
    home: Path
    sleeps: list[float]
    opened: list[str]
    prompts: list[str]

    @property
    def config(self) -> Path:
        return self.home / ".waas"


@pytest.fixture
def api() -> LoginApi:
    return LoginApi()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    state = Env(tmp_path, [], [], [])
    monkeypatch.setattr(time, "sleep", state.sleeps.append)
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: state.opened.append(url))

    def no_prompt(prompt: str = "") -> str:
        raise AssertionError(f"unexpected prompt {prompt!r}")

    monkeypatch.setattr(getpass, "getpass", no_prompt)
    return state


@pytest.fixture
def waas(api: LoginApi, env: Env, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    def run(*argv: str) -> Result:
        code = main(["--api_url", API, *argv], transport=httpx.MockTransport(api))
        captured = capsys.readouterr()
        # Whatever happened, the token is never shown.
        assert TOKEN not in captured.out
        assert TOKEN not in captured.err
        return Result(code, captured.out, captured.err)

    return run


def saved(path: Path) -> dict[str, object]:
    return yaml.safe_load(path.read_text())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- device login ---------------------------------------------------------------------------


def test_device_login_waits_through_pending_and_slow_down_then_saves_the_token(
    waas, api, env
) -> None:
    api.device_flow().on("POST", "/auth/device", device(interval=2))
    api.on(
        "POST",
        "/auth/device/token",
        pending(),
        pending(),
        pending("slow_down", interval=2),
        reply(200, ISSUED),
    )
    result = waas("login")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == (
        f"Open {API}/auth/device/verify?user_code=WDJB-MJHT and confirm the code WDJB-MJHT"
    )
    assert lines[-1] == f"Logged in as Alice Doe (alice-sub); token saved to {env.config}"
    # Every `interval` seconds, and 5 s more after slow_down.
    assert env.sleeps == [2, 2, 2, 7]
    polls = api.sent("POST", "/auth/device/token")
    assert [json.loads(p.content) for p in polls] == [{"device_code": "dev-code-1"}] * 4
    assert saved(env.config) == {"access_token": TOKEN, "api_url": API}
    assert mode(env.config) == 0o600


def test_device_login_follows_a_longer_interval_asked_by_the_server(waas, api, env) -> None:
    api.device_flow().on("POST", "/auth/device", device(interval=1))
    api.on("POST", "/auth/device/token", pending(interval=4), reply(200, ISSUED))
    assert waas("login").code == 0
    assert env.sleeps == [1, 4]


def test_device_login_that_expires_unconfirmed_fails_clearly_and_saves_nothing(
    waas, api, env
) -> None:
    api.device_flow().on("POST", "/auth/device", device(expires_in=6, interval=2))
    api.on("POST", "/auth/device/token", pending())
    result = waas("login")
    assert result.code == 1
    assert "Error: the code WDJB-MJHT expired after 6 seconds without being confirmed" in (
        result.err
    )
    assert 'run "waas login" again' in result.err
    assert env.sleeps == [2, 2, 2]
    assert not env.config.exists()


def test_denied_device_login_reports_the_servers_reason_and_saves_nothing(waas, api, env) -> None:
    api.device_flow().on("POST", "/auth/device", device())
    api.on(
        "POST",
        "/auth/device/token",
        pending(),
        reply(400, envelope(400, "access_denied: the login request was denied")),
    )
    result = waas("login")
    assert result.code == 1
    assert "Error: login failed: access_denied: the login request was denied" in result.err
    assert not env.config.exists()


def test_device_login_calls_are_anonymous_even_with_an_old_token_saved(waas, api, env) -> None:
    env.config.write_text("access_token: old-token\n")
    api.device_flow().on("POST", "/auth/device", device())
    api.on("POST", "/auth/device/token", reply(200, ISSUED))
    assert waas("login").code == 0
    assert all("authorization" not in r.headers for r in api.requests)
    assert saved(env.config)["access_token"] == TOKEN


def test_json_login_prints_the_identity_without_the_token_and_messages_on_stderr(
    waas, api, env
) -> None:
    api.device_flow().on("POST", "/auth/device", device())
    api.on("POST", "/auth/device/token", reply(200, ISSUED))
    result = waas("-o", "json", "login")
    assert result.code == 0
    assert json.loads(result.out) == {
        "token_type": "Bearer",
        "expires_at": "2030-01-02T03:04:05Z",
        "user_id": "alice-sub",
        "display_name": "Alice Doe",
        "config_file": str(env.config),
    }
    assert "confirm the code WDJB-MJHT" in result.err


@pytest.mark.parametrize(
    ("terminal", "flags", "opened"),
    [
        (True, (), [f"{API}/auth/device/verify?user_code=WDJB-MJHT"]),
        (True, ("--no-browser",), []),
        (False, (), []),
    ],
)
def test_browser_opens_only_on_a_terminal_without_no_browser(
    waas, api, env, monkeypatch, terminal, flags, opened
) -> None:
    if terminal:
        monkeypatch.setattr(sys, "stdout", Terminal())
    api.device_flow().on("POST", "/auth/device", device())
    api.on("POST", "/auth/device/token", reply(200, ISSUED))
    assert waas("login", *flags).code == 0
    assert env.opened == opened


def test_no_browser_is_started_without_a_graphical_session(waas, api, env, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdout", Terminal())
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    api.device_flow().on("POST", "/auth/device", device())
    api.on("POST", "/auth/device/token", reply(200, ISSUED))
    assert waas("login").code == 0
    assert env.opened == []


# --- saving ---------------------------------------------------------------------------------


def test_saving_keeps_other_keys_and_comments_and_tightens_a_loose_file(waas, api, env) -> None:
    config = env.home / "custom.yaml"
    config.write_text(
        "# my HPCWaaS settings\n"
        "skip_tls_verify: true\n"
        "access_token: old-token\n"
        "ca_path: /etc/ssl/certs   # our CAs\n"
    )
    config.chmod(0o644)
    api.device_flow().on("POST", "/auth/device", device())
    api.on("POST", "/auth/device/token", reply(200, ISSUED))
    result = waas("--config", str(config), "login")
    assert result.code == 0
    assert mode(config) == 0o600
    assert f"Note: {config} could be read by other users (mode 0644); its mode is now 0600" in (
        result.err
    )
    assert saved(config) == {
        "skip_tls_verify": True,
        "access_token": TOKEN,
        "ca_path": "/etc/ssl/certs",
        "api_url": API,
    }
    text = config.read_text()
    assert text.startswith("# my HPCWaaS settings\nskip_tls_verify: true\n")
    assert "# our CAs" in text
    assert not env.config.exists()


def test_login_creates_a_missing_config_file_named_by_config(waas, api, env) -> None:
    config = env.home / "new.yaml"
    api.device_flow().on("POST", "/auth/device", device())
    api.on("POST", "/auth/device/token", reply(200, ISSUED))
    result = waas("--config", str(config), "login")
    assert result.code == 0
    assert result.out.endswith(f"token saved to {config}\n")
    assert mode(config) == 0o600


def test_api_url_from_the_config_file_is_not_rewritten(api, env, capsys) -> None:
    env.config.write_text(f"api_url: {API}\n")
    api.device_flow().on("POST", "/auth/device", device())
    api.on("POST", "/auth/device/token", reply(200, ISSUED))
    assert main(["login"], transport=httpx.MockTransport(api)) == 0
    assert env.config.read_text() == f"api_url: {API}\naccess_token: {TOKEN}\n"
    assert TOKEN not in capsys.readouterr().out


def test_a_token_in_the_environment_is_noted_as_taking_precedence(
    waas, api, env, monkeypatch
) -> None:
    monkeypatch.setenv("HW_ACCESS_TOKEN", "env-token")
    api.device_flow().on("POST", "/auth/device", device())
    api.on("POST", "/auth/device/token", reply(200, ISSUED))
    result = waas("login")
    assert result.code == 0
    assert "HW_ACCESS_TOKEN is set and takes precedence over the saved token" in result.err


# --- pasted tokens --------------------------------------------------------------------------


def test_token_stdin_is_checked_with_users_me_then_saved(waas, api, env, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{TOKEN}\n"))
    api.on("GET", "/users/me", reply(200, USER))
    result = waas("login", "--token-stdin")
    assert result.code == 0, result.err
    assert result.out == f"Logged in as Alice Doe (alice-sub); token saved to {env.config}\n"
    (check,) = api.sent("GET", "/users/me")
    assert check.headers["authorization"] == f"Bearer {TOKEN}"
    assert saved(env.config)["access_token"] == TOKEN


def test_a_refused_token_is_not_saved(waas, api, env, monkeypatch) -> None:
    env.config.write_text("skip_tls_verify: false\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO(TOKEN))
    api.on("GET", "/users/me", reply(401, envelope(401, "Invalid authorization token")))
    result = waas("login", "--token-stdin")
    assert result.code == 1
    assert result.err.splitlines() == [
        "Error: the server refused this token (Invalid authorization token); nothing was saved"
    ]
    assert env.config.read_text() == "skip_tls_verify: false\n"


@pytest.mark.parametrize("given", ["", "   \n", "two words"])
def test_empty_or_malformed_stdin_token_is_refused_before_asking_the_server(
    waas, api, env, monkeypatch, given
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(given))
    result = waas("login", "--token-stdin")
    assert result.code == 1
    assert "nothing was saved" in result.err
    assert api.requests == []
    assert not env.config.exists()


def test_paste_login_opens_the_login_page_and_reads_the_token_without_echo(
    waas, api, env, monkeypatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)

    def typed(prompt: str = "") -> str:
        env.prompts.append(prompt)
        return f"  {TOKEN}  \n"

    monkeypatch.setattr(getpass, "getpass", typed)
    api.paste_flow().on("GET", "/users/me", reply(200, USER))
    result = waas("login")
    assert result.code == 0
    assert terminal.getvalue().splitlines() == [
        f"Open {API}/auth/login in a browser, log in, and paste the token shown",
        f"Logged in as Alice Doe (alice-sub); token saved to {env.config}",
    ]
    assert TOKEN not in terminal.getvalue()
    assert env.opened == [f"{API}/auth/login"]
    assert env.prompts == ["Token: "]
    assert saved(env.config)["access_token"] == TOKEN


def test_a_server_without_auth_config_gets_the_paste_login(waas, api, env, monkeypatch) -> None:
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": TOKEN)
    api.on("GET", "/users/me", reply(200, {**USER, "display_name": None}))
    result = waas("login")
    assert result.code == 0
    assert f"Open {API}/auth/login in a browser" in result.out
    assert "Logged in as alice-sub (alice-sub)" in result.out


def test_no_input_at_the_token_prompt_saves_nothing(waas, api, env, monkeypatch) -> None:
    def closed(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr(getpass, "getpass", closed)
    api.paste_flow()
    result = waas("login")
    assert result.code == 1
    assert "Error: no token was given; nothing was saved" in result.err
    assert not env.config.exists()


# --- logout ---------------------------------------------------------------------------------


def test_logout_revokes_the_token_and_removes_only_that_key(waas, api, env) -> None:
    env.config.write_text(f"api_url: {API}\naccess_token: {TOKEN}\nskip_tls_verify: false\n")
    api.on("DELETE", "/auth/token", reply(204))
    result = waas("logout")
    assert result.code == 0
    assert result.out == f"Logged out: token revoked and removed from {env.config}\n"
    (revoke,) = api.sent("DELETE", "/auth/token")
    assert revoke.headers["authorization"] == f"Bearer {TOKEN}"
    assert env.config.read_text() == f"api_url: {API}\nskip_tls_verify: false\n"


def test_logout_with_an_expired_token_still_removes_it_and_succeeds(waas, api, env) -> None:
    env.config.write_text(f"access_token: {TOKEN}\n")
    body = envelope(401, "You are not logged in or your session has expired")
    api.on("DELETE", "/auth/token", reply(401, body))
    result = waas("-o", "json", "logout")
    assert result.code == 0
    assert json.loads(result.out) == {
        "revoked": False,
        "already_expired": True,
        "removed": True,
        "config_file": str(env.config),
    }
    assert result.err == (
        f"Logged out: the token was already expired or revoked; removed it from {env.config}\n"
    )
    assert "access_token" not in (saved(env.config) or {})


def test_logout_without_a_token_says_so(waas, api, env) -> None:
    result = waas("logout")
    assert (result.code, result.out) == (0, "Not logged in: there is no access token to revoke\n")
    assert api.requests == []


def test_logout_of_a_token_given_by_env_revokes_it_and_says_the_file_had_none(
    waas, api, env, monkeypatch
) -> None:
    monkeypatch.setenv("HW_ACCESS_TOKEN", TOKEN)
    api.on("DELETE", "/auth/token", reply(204))
    result = waas("logout")
    assert result.code == 0
    assert result.out == (
        f"Logged out: token revoked; {env.config} held no token (it came from -t or "
        "HW_ACCESS_TOKEN)\n"
    )


def test_logout_of_a_token_the_server_cannot_revoke_removes_it_and_says_why(waas, api, env) -> None:
    env.config.write_text(f"access_token: {TOKEN}\n")
    body = envelope(400, "this request was not made with one of this server's tokens")
    api.on("DELETE", "/auth/token", reply(400, body))
    result = waas("logout")
    assert result.code == 0
    assert result.out == (
        "Logged out: the token was not revoked by the server (this request was not made with "
        "one of this server's tokens); it stays valid until it expires; removed it from "
        f"{env.config}\n"
    )
    assert not saved(env.config)


def test_logout_keeps_the_token_when_the_server_cannot_be_asked(waas, api, env) -> None:
    env.config.write_text(f"access_token: {TOKEN}\n")
    api.on("DELETE", "/auth/token", reply(503, envelope(503, "down for maintenance")))
    result = waas("logout")
    assert result.code == 1
    assert saved(env.config) == {"access_token": TOKEN}


# --- whoami and the 401 hint ----------------------------------------------------------------


def test_whoami_prints_id_name_email_groups_and_expiry(waas, api, env) -> None:
    env.config.write_text(f"access_token: {TOKEN}\n")
    api.on("GET", "/users/me", reply(200, USER))
    result = waas("whoami")
    assert result.code == 0
    assert result.out.splitlines() == [
        "User ID: alice-sub",
        "Name: Alice Doe",
        "Email: alice@example.org",
        "Groups: eflows, hpc",
        "Token expires: 2030-01-02T03:04:05Z",
    ]
    assert api.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_whoami_json_is_the_user_object(waas, api, env) -> None:
    api.on("GET", "/users/me", reply(200, USER))
    result = waas("-o", "json", "whoami")
    assert result.code == 0
    assert json.loads(result.out) == USER


@pytest.mark.parametrize(
    "detail", ["You are not logged in or your session has expired", "Invalid authorization token"]
)
def test_an_expired_or_unknown_token_error_hints_to_log_in_again(
    waas, api, env, monkeypatch, detail
) -> None:
    monkeypatch.setenv("HW_ACCESS_TOKEN", "stale")
    api.on("GET", "/workflows", reply(401, envelope(401, detail)))
    result = waas("workflows", "list")
    assert result.code == 1
    assert result.err.splitlines() == [
        f"Error: unauthorized (401): {detail}",
        'Run "waas login" to log in again.',
    ]


def test_a_missing_credential_error_hints_at_login_and_the_login_page(waas, api, env) -> None:
    api.on("GET", "/users/me", reply(401, envelope(401, "Authorization Required")))
    result = waas("whoami")
    assert result.code == 1
    hints = [line for line in result.err.splitlines() if not line.startswith("Error:")]
    assert hints == [
        f'Hint: run "waas login", or get a token by opening {API}/auth/login in a browser '
        "and pass it with -t=<token>"
    ]
