"""The server configuration: the original's keys, ours, env vars and precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcwaas.settings import ConfigError, load_settings, parse_listen_address

ORIGINAL = """
listen_address: 0.0.0.0:9099
auth:
  auth_type: basic
  basic_auth:
    accounts:
      - {username: alice, password: secret-a}
  auth_url: https://idp.example/oauth2-as/oauth2-authz
  token_url: https://idp.example/oauth2/token
  user_info_url: https://idp.example/oauth2/userinfo
  redirect_url: https://waas.example/auth/authorize
  scopes: [profile, email, eflows]
  session_duration: 3600
  client_id: the-client
  client_secret: the-secret
alien_config:
  address: http://a4c.example:8088
  user: admin
  password: admin
"""


def test_the_originals_config_file_is_accepted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "hpcwaas-api.yml"
    config.write_text(ORIGINAL)
    settings = load_settings(config, data_dir=tmp_path)
    assert settings.listen_address == "0.0.0.0:9099"
    assert settings.auth.auth_type == "basic"
    assert settings.auth.basic_auth.accounts[0].username == "alice"
    assert settings.auth.scopes == ["profile", "email", "eflows"]
    assert settings.auth.session_duration == 3600
    assert "alien_config" in caplog.text
    assert "the-secret" not in repr(settings)


def test_no_config_file_is_the_embedded_default_on_loopback(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path)
    assert settings.embedded_default
    assert settings.listen_address == "127.0.0.1:9090"
    assert settings.auth.auth_type == "local"
    assert list(settings.environments) == ["local"]


def test_precedence_is_option_then_env_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yml"
    config.write_text("listen_address: 127.0.0.1:1001\nauth: {session_duration: 10}\n")
    monkeypatch.setenv("HPCWAAS_LISTEN_ADDRESS", "127.0.0.1:1002")
    monkeypatch.setenv("HPCWAAS_AUTH__SESSION_DURATION", "20")
    assert load_settings(config).listen_address == "127.0.0.1:1002"
    assert load_settings(config).auth.session_duration == 20
    assert load_settings(config, listen_address="127.0.0.1:1003").listen_address == (
        "127.0.0.1:1003"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("auth: {auth_type: none}", "unknown auth_type 'none'"),
        ("auth: {auth_typ: basic}", "auth.auth_typ"),
        ("listen_adress: 1.2.3.4:5", "unknown config keys: listen_adress"),
        ("limits: {max_body_bytes: 10}", "limits.max_body_bytes"),
        ("- a\n- b", "must hold a mapping"),
        ("auth: [", "not valid YAML"),
    ],
)
def test_bad_config_is_refused_with_a_message_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "c.yml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as info:
        load_settings(config)
    assert str(config) in str(info.value)


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yml")


@pytest.mark.parametrize("address", ["localhost", "1.2.3.4:", "1.2.3.4:99999", ":x"])
def test_malformed_listen_address_is_refused(address: str) -> None:
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1:9090"):
        parse_listen_address(address)


def test_listen_address_with_ipv6_host() -> None:
    assert parse_listen_address("[::1]:9090") == ("::1", 9090)
