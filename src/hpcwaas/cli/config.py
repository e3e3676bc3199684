"""Where the CLI's connection settings come from: flag > env var > config file > default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_API_URL = "https://127.0.0.1:9090"
DEFAULT_CONFIG_FILE = "~/.waas"

KEYS = (
    "api_url",
    "skip_tls_verify",
    "ca_file",
    "ca_path",
    "key_file",
    "cert_file",
    "user",
    "access_token",
)
ENV_VARS = {key: f"HW_{key.upper()}" for key in KEYS}
_PATH_KEYS = frozenset({"ca_file", "ca_path", "key_file", "cert_file"})
_TRUE = frozenset({"1", "t", "true", "y", "yes", "on"})
_FALSE = frozenset({"0", "f", "false", "n", "no", "off"})

# Rank of each source, to choose between a token and a user given at different levels.
_FLAG, _ENV, _FILE = 3, 2, 1


class ConfigError(Exception):
    """A setting could not be read (missing --config file, bad YAML, bad boolean)."""


@dataclass(frozen=True)
class Settings:
    """The resolved connection settings. At most one of `user` and `access_token` is set."""

    api_url: str = DEFAULT_API_URL
    skip_tls_verify: bool = False
    ca_file: str | None = None
    ca_path: str | None = None
    key_file: str | None = None
    cert_file: str | None = None
    user: str | None = None
    access_token: str | None = None


def resolve(
    flags: Mapping[str, Any], environ: Mapping[str, str], config_file: str | None
) -> Settings:
    """Merge flags (None when not given), env vars and the config file, highest first."""
    file_values = load_config_file(config_file)
    chosen: dict[str, tuple[Any, int]] = {}
    for key in KEYS:
        for value, rank, source in (
            (flags.get(key), _FLAG, f"--{key}"),
            (environ.get(ENV_VARS[key]), _ENV, ENV_VARS[key]),
            (file_values.get(key), _FILE, f"{key} in the config file"),
        ):
            if value is None or value == "":
                continue
            chosen[key] = (_convert(key, value, source), rank)
            break
    values = {key: value for key, (value, _rank) in chosen.items()}
    if "user" in chosen and "access_token" in chosen:
        # One Authorization header: the credential given at the higher level wins; a tie, the token.
        if chosen["user"][1] > chosen["access_token"][1]:
            del values["access_token"]
        else:
            del values["user"]
    return Settings(**values)


def load_config_file(path: str | None) -> dict[str, Any]:
    """The config file's mapping; the default file may be missing, an explicit one may not."""
    explicit = path is not None
    resolved = os.path.expanduser(path if path is not None else DEFAULT_CONFIG_FILE)
    try:
        with open(resolved, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path}: no such file") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"config file {resolved}: {exc.strerror or exc}") from None
    import yaml  # type: ignore[import-untyped,unused-ignore]  # loaded only when a command runs

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {resolved}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {resolved}: expected a mapping of settings")
    return {str(k): v for k, v in data.items()}


def _convert(key: str, value: Any, source: str) -> Any:
    if key == "skip_tls_verify":
        return _boolean(value, source)
    text = str(value)
    return os.path.expanduser(text) if key in _PATH_KEYS else text


def _boolean(value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{source}: expected true or false, got {value!r}")
