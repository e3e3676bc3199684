"""`waas ssh_keys key-gen --type`: what is sent, and the usage error for an unknown type."""

from __future__ import annotations

import json

import httpx
import pytest

from hpcwaas.cli.config import ENV_VARS
from hpcwaas.cli.main import main

KEY = {"id": "0b5f-key", "public_key": "ssh-ed25519 AAAAC3Nza user@host\n"}


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys):
    """Run `waas` against a fake API; return (exit code, stdout, stderr, request bodies)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HW_ACCESS_TOKEN", "tok")

    def waas(*argv: str) -> tuple[int, str, str, list[object]]:
        bodies: list[object] = []

        def answer(request: httpx.Request) -> httpx.Response:
            assert (request.method, request.url.path) == ("POST", "/ssh_keys")
            bodies.append(json.loads(request.content or b"null"))
            return httpx.Response(201, json=KEY)

        code = main(list(argv), transport=httpx.MockTransport(answer))
        captured = capsys.readouterr()
        return code, captured.out, captured.err, bodies

    return waas


@pytest.mark.parametrize("key_type", ["rsa", "rsa4096", "ed25519"])
def test_type_flag_is_sent_in_the_body(run, key_type: str) -> None:
    code, out, _, bodies = run("ssh_keys", "key-gen", "--type", key_type)
    assert code == 0
    assert bodies == [{"type": key_type}]
    assert "SSH Public key: ssh-ed25519 AAAAC3Nza user@host" in out


def test_without_the_flag_the_body_is_the_original_s(run) -> None:
    code, _, _, bodies = run("keys", "gen")
    assert code == 0
    assert bodies == [{}]


def test_type_and_metadata_go_together(run) -> None:
    code, out, _, bodies = run("-o", "json", "k", "g", "-m", "site=bsc", "--type", "ed25519")
    assert code == 0
    assert bodies == [{"metadata": {"site": "bsc"}, "type": "ed25519"}]
    assert json.loads(out) == KEY


def test_an_unknown_type_is_a_usage_error_naming_the_choices(run) -> None:
    code, _, err, bodies = run("ssh_keys", "key-gen", "--type", "dsa")
    assert code == 1
    assert "rsa" in err and "rsa4096" in err and "ed25519" in err
    assert bodies == []


def test_help_lists_the_types(run) -> None:
    code, out, _, _ = run("ssh_keys", "key-gen", "--help")
    assert code == 0
    assert "--type" in out and "ed25519" in out
