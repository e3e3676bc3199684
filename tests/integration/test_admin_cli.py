"""`hpcwaas-api` administration: options anywhere, clear one-line errors, secrets never echoed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import BIN, free_port


def _admin(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hpcwaas-api"), *args], capture_output=True, text=True, input=stdin, timeout=60
    )


def test_global_options_go_before_or_after_the_subcommand(tmp_path: Path) -> None:
    before = _admin("--data_dir", str(tmp_path), "tokens", "issue", "--user", "ann")
    after = _admin("tokens", "issue", "--user", "ann", "--data_dir", str(tmp_path))
    assert before.returncode == 0 and after.returncode == 0, before.stderr + after.stderr
    for result in (before, after):
        [token] = result.stdout.splitlines()  # the token alone on stdout
        assert token.startswith("hw_")
    listing = _admin("tokens", "list", "--data_dir", str(tmp_path)).stdout
    assert listing.count("ann") == 2
    assert before.stdout.strip() not in listing


def test_bad_ttl_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = _admin("--data_dir", str(tmp_path), "tokens", "issue", "--user", "x", "--ttl", "soon")
    assert result.returncode == 1
    assert "--ttl" in result.stderr and "1h30m" in result.stderr
    assert "Traceback" not in result.stderr


def test_revoking_an_unknown_token_fails(tmp_path: Path) -> None:
    result = _admin("--data_dir", str(tmp_path), "tokens", "revoke", "nosuchid")
    assert result.returncode == 1
    assert "no active token nosuchid" in result.stderr


def test_accounts_are_added_listed_and_removed(tmp_path: Path) -> None:
    data = ["--data_dir", str(tmp_path)]
    short = _admin(*data, "users", "add", "bea", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 8" in short.stderr
    added = _admin(*data, "users", "add", "bea", "--password-stdin", stdin="long-enough\n")
    assert added.returncode == 0, added.stderr
    assert "long-enough" not in added.stdout + added.stderr
    assert "bea" in _admin(*data, "users", "list").stdout
    assert _admin(*data, "users", "remove", "bea").returncode == 0
    assert "bea" not in _admin(*data, "users", "list").stdout
    assert _admin(*data, "users", "remove", "bea").returncode == 1


def test_users_hash_prints_an_argon2_hash(tmp_path: Path) -> None:
    result = _admin(
        "--data_dir", str(tmp_path), "users", "hash", "--password-stdin", stdin="pw-12345678\n"
    )
    assert result.stdout.startswith("$argon2id$")


def test_db_upgrade_reports_the_schema_state(tmp_path: Path) -> None:
    assert _admin("--data_dir", str(tmp_path), "db", "upgrade").stdout.strip() == (
        "database schema created"
    )
    assert _admin("--data_dir", str(tmp_path), "db", "upgrade").stdout.strip() == (
        "database schema current"
    )


def test_vault_config_without_approle_credentials_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(
        f"data_dir: {tmp_path}\nlisten_address: 127.0.0.1:{free_port()}\n"
        "vault_config: {address: http://127.0.0.1:8200}\n"
    )
    result = _admin("--config", str(config))
    assert result.returncode == 1
    assert "vault_config" in result.stderr
