"""Where the CLI's connection settings come from: flag > env var > config file > default."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from typing import Any, NamedTuple

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


# NamedTuples, not dataclasses: importing dataclasses (and inspect) cost `waas --help`
# about a tenth of its start-up.
class Settings(NamedTuple):
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
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    config_file: str | None,
    *,
    missing_ok: bool = False,
) -> Settings:
    """Merge flags (None when not given), env vars and the config file, highest first."""
    file_values = load_config_file(config_file, missing_ok=missing_ok)
    chosen: dict[str, tuple[Any, int]] = {}
    for key in KEYS:
        for value, rank, source in (
            (flags.get(key), _FLAG, f"--{key}"),
            (environ.get(ENV_VARS[key]), _ENV, ENV_VARS[key]),
            (file_values.get(key), _FILE, f"{key} in the config file"),
        ):
            if value is None or (isinstance(value, str) and not value.strip()):
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


def config_path(path: str | None) -> str:
    """The config file in use: `--config`, else ~/.waas, with `~` expanded."""
    return os.path.expanduser(path if path is not None else DEFAULT_CONFIG_FILE)


def load_config_file(path: str | None, *, missing_ok: bool = False) -> dict[str, Any]:
    """The config file's mapping; the default file may be missing, an explicit one may not.

    `missing_ok` lets an explicit file be missing too (`waas login` creates it).
    """
    resolved = config_path(path)
    try:
        with open(resolved, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        if path is not None and not missing_ok:
            raise ConfigError(f"config file {path}: no such file") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"config file {resolved}: {exc.strerror or exc}") from None
    return _parse_mapping(text, resolved)


def _parse_mapping(text: str, where: str) -> dict[str, Any]:
    import yaml  # type: ignore[import-untyped,unused-ignore]  # loaded only when a command runs

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {where}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {where}: expected a mapping of settings")
    return {str(k): v for k, v in data.items()}


class SavedConfig(NamedTuple):
    """What `update_config_file` did: `loose_mode` is the old mode when it was tightened."""

    path: str
    written: bool
    loose_mode: int | None = None


def update_config_file(path: str | None, updates: Mapping[str, str | None]) -> SavedConfig:
    """Set (a string) or remove (None) top-level keys of the config file, keeping the others.

    Other keys, comments and layout stay as they were when the file is a plain block
    mapping (else the mapping is written anew). A new file is created with mode 0600;
    when a key is set in an existing file that others may read, it is chmod'ed to 0600
    first, before the secret is written.
    """
    resolved = config_path(path)
    try:
        with open(resolved, encoding="utf-8") as handle:
            text: str | None = handle.read()
    except FileNotFoundError:
        text = None
    except OSError as exc:
        raise ConfigError(f"config file {resolved}: {exc.strerror or exc}") from None
    current = _parse_mapping(text or "", resolved)
    wanted = dict(current)
    for key, value in updates.items():
        if value is None:
            wanted.pop(key, None)
        else:
            wanted[key] = value
    if wanted == current and (text is not None or not wanted):
        return SavedConfig(resolved, written=False)
    new_text = _edited(text or "", updates, wanted)
    loose_mode = None
    try:
        if text is not None and any(v is not None for v in updates.values()):
            mode = stat.S_IMODE(os.stat(resolved).st_mode)
            if mode & 0o077:
                os.chmod(resolved, 0o600)
                loose_mode = mode
        fd = os.open(resolved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new_text)
    except OSError as exc:
        raise ConfigError(f"cannot write config file {resolved}: {exc.strerror or exc}") from None
    return SavedConfig(resolved, written=True, loose_mode=loose_mode)


def _edited(text: str, updates: Mapping[str, str | None], wanted: dict[str, Any]) -> str:
    """`text` with each key's top-level entry replaced, removed or appended."""
    import yaml

    lines = text.splitlines(keepends=True)
    for key, value in updates.items():
        entry = None
        if value is not None:
            dumped = yaml.safe_dump({key: value}, default_flow_style=False, width=1 << 20)
            entry = dumped.rstrip("\n") + "\n"
        lines = _replace_entry(lines, key, entry)
    edited = "".join(lines)
    try:
        if (yaml.safe_load(edited) or {}) == wanted:
            return edited
    except yaml.YAMLError:
        pass
    # Not a plain block mapping (flow style, documents, anchors): write the mapping anew.
    return str(yaml.safe_dump(wanted, default_flow_style=False, sort_keys=False))


def _replace_entry(lines: list[str], key: str, entry: str | None) -> list[str]:
    start = re.compile(rf"{re.escape(key)}\s*:(\s|$)")
    result: list[str] = []
    placed = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if not start.match(line):
            result.append(line)
            index += 1
            continue
        index += 1  # skip the entry and its indented continuation lines
        while index < len(lines) and lines[index][:1] in (" ", "\t") and lines[index].strip():
            index += 1
        if entry is not None and not placed:
            result.append(entry)
            placed = True
    if entry is not None and not placed:
        if result and not result[-1].endswith("\n"):
            result[-1] += "\n"
        result.append(entry)
    return result


def _convert(key: str, value: Any, source: str) -> Any:
    if key == "skip_tls_verify":
        return _boolean(value, source)
    text = str(value)
    if key == "access_token":
        # A token read from a file keeps its newline: the original trimmed it too.
        return text.strip()
    if key == "api_url":
        text = text.strip()
        # No scheme means https://, as the original read it.
        return text if "://" in text else f"https://{text}"
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
