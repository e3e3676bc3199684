"""Where `waas` settings come from: flag > env var > config file > default."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hpcwaas.cli.config import (
    DEFAULT_API_URL,
    ConfigError,
    Settings,
    load_config_file,
    resolve,
    update_config_file,
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_defaults_when_nothing_is_given() -> None:
    assert resolve({}, {}, None) == Settings(api_url=DEFAULT_API_URL)


def test_default_config_file_in_home_is_read(home: Path) -> None:
    write(home / ".waas", "api_url: http://from-file:1\naccess_token: file-token\n")
    settings = resolve({}, {}, None)
    assert settings.api_url == "http://from-file:1"
    assert settings.access_token == "file-token"


def test_env_beats_config_file_and_flag_beats_env(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "api_url: http://file\naccess_token: file-token\n")
    env = {"HW_API_URL": "http://env", "HW_ACCESS_TOKEN": "env-token"}
    assert resolve({}, env, config).api_url == "http://env"
    assert resolve({}, env, config).access_token == "env-token"
    flags = {"api_url": "http://flag", "access_token": "flag-token"}
    settings = resolve(flags, env, config)
    assert (settings.api_url, settings.access_token) == ("http://flag", "flag-token")


def test_every_key_has_its_env_var(tmp_path: Path) -> None:
    env = {
        "HW_API_URL": "http://env",
        "HW_SKIP_TLS_VERIFY": "true",
        "HW_CA_FILE": "/ca.pem",
        "HW_CA_PATH": "/cas",
        "HW_KEY_FILE": "/k.pem",
        "HW_CERT_FILE": "/c.pem",
        "HW_USER": "alice:pw",
    }
    assert resolve({}, env, None) == Settings(
        api_url="http://env",
        skip_tls_verify=True,
        ca_file="/ca.pem",
        ca_path="/cas",
        key_file="/k.pem",
        cert_file="/c.pem",
        user="alice:pw",
    )


def test_skip_tls_verify_is_read_as_a_boolean_from_file_and_env(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "skip_tls_verify: true\n")
    assert resolve({}, {}, config).skip_tls_verify is True
    assert resolve({}, {"HW_SKIP_TLS_VERIFY": "0"}, config).skip_tls_verify is False


def test_bad_boolean_in_env_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="HW_SKIP_TLS_VERIFY"):
        resolve({}, {"HW_SKIP_TLS_VERIFY": "maybe"}, None)


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        resolve({}, {}, str(tmp_path / "absent.yaml"))


def test_invalid_yaml_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve({}, {}, write(tmp_path / "c.yaml", "api_url: [unclosed\n"))


def test_config_file_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        resolve({}, {}, write(tmp_path / "c.yaml", "- a\n- b\n"))


def test_file_paths_expand_the_home_directory(home: Path) -> None:
    settings = resolve({"ca_file": "~/ca.pem"}, {}, None)
    assert settings.ca_file == str(home / "ca.pem")


def test_empty_env_var_counts_as_unset(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "access_token: file-token\n")
    assert resolve({}, {"HW_ACCESS_TOKEN": ""}, config).access_token == "file-token"


def test_user_given_as_flag_beats_token_from_config_file(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "access_token: file-token\n")
    settings = resolve({"user": "alice:pw"}, {}, config)
    assert (settings.user, settings.access_token) == ("alice:pw", None)


def test_token_wins_over_user_given_at_the_same_level() -> None:
    settings = resolve({}, {"HW_USER": "alice:pw", "HW_ACCESS_TOKEN": "t"}, None)
    assert (settings.user, settings.access_token) == (None, "t")


# --- writing the config file (waas login / logout) ------------------------------------------


def test_setting_a_key_replaces_its_block_and_keeps_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("# top\naccess_token: >-\n  folded\n  old\nuser: bob  # me\n")
    result = update_config_file(str(config), {"access_token": "new"})
    assert result.written
    assert config.read_text() == "# top\naccess_token: new\nuser: bob  # me\n"


def test_a_value_needing_quotes_is_quoted(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    update_config_file(str(config), {"access_token": "123", "api_url": "http://h: x"})
    assert load_config_file(str(config)) == {"access_token": "123", "api_url": "http://h: x"}


def test_a_flow_style_file_is_rewritten_as_a_block_mapping(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("{api_url: 'http://h', skip_tls_verify: true}\n")
    update_config_file(str(config), {"access_token": "t"})
    assert load_config_file(str(config)) == {
        "api_url": "http://h",
        "skip_tls_verify": True,
        "access_token": "t",
    }


def test_removing_a_missing_key_leaves_the_file_untouched(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("api_url: http://h\n")
    config.chmod(0o644)
    assert not update_config_file(str(config), {"access_token": None}).written
    assert not update_config_file(str(tmp_path / "absent"), {"access_token": None}).written
    assert not (tmp_path / "absent").exists()
    assert stat.S_IMODE(config.stat().st_mode) == 0o644


def test_an_invalid_config_file_is_not_overwritten(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("api_url: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        update_config_file(str(config), {"access_token": "t"})
    assert config.read_text() == "api_url: [unclosed\n"
