"""docs/config-reference.md is generated from the Settings model and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, SecretStr

from hpcwaas import settings_reference
from hpcwaas.settings import Settings

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "config-reference.md"


def test_checked_in_reference_is_current() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == settings_reference.generate(), (
        settings_reference.OUT_OF_DATE
    )


def test_generation_is_deterministic() -> None:
    assert settings_reference.generate() == settings_reference.generate()


def test_a_new_field_changes_the_reference_and_fails_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Extended(Settings):
        new_knob: int = Field(default=3, description="A knob added later.")

    current = settings_reference.generate()
    extended = settings_reference.generate(Extended)
    assert extended != current
    assert "| `new_knob` | `int` | `3` | `HPCWAAS_NEW_KNOB` | A knob added later. |  |" in extended

    # The checked-in file made from the extended model no longer matches the model: --check fails.
    output = tmp_path / "config-reference.md"
    output.write_text(extended, encoding="utf-8")
    assert settings_reference.main(["--check", "--output", str(output)]) == 1
    assert settings_reference.OUT_OF_DATE in capsys.readouterr().err
    assert settings_reference.OUT_OF_DATE == (
        "docs/config-reference.md is out of date: run python -m hpcwaas.settings_reference"
    )

    # Generating rewrites it; then --check passes.
    assert settings_reference.main(["--output", str(output)]) == 0
    assert settings_reference.main(["--check", "--output", str(output)]) == 0


def test_reference_content() -> None:
    text = settings_reference.generate()
    rows = {line.split(" | ")[0].strip("| `"): line for line in text.splitlines() if "| `" in line}
    session = rows["auth.session_duration"]
    assert "`HPCWAAS_AUTH__SESSION_DURATION`" in session
    assert "`86400`" in session
    assert "Seconds a login token lives." in session
    assert session.endswith("| original |")
    assert rows["auth.issuer"].endswith("|  |")
    assert "`HPCWAAS_ENVIRONMENTS` (JSON)" in rows["environments"]
    assert '"Local host"' in rows["environments"]  # default_factory values rendered
    assert "environments.<slurm>.host_keys" in rows
    assert "auth.basic_auth.accounts[].password" in rows
    assert rows["alien_config"].endswith("| original |")
    assert "embedded_default" not in rows


def test_secrets_never_show_a_value() -> None:
    class WithSecret(Settings):
        api_secret: SecretStr = SecretStr("hunter2-do-not-print")

    text = settings_reference.generate(WithSecret)
    assert "hunter2" not in text
    assert "| `api_secret` | `SecretStr` | (secret) |" in text
