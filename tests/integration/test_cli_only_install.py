"""The CLI installs on its own: `pip install hpcwaas` without extras gives a working `waas`.

Slow-ish (a fresh venv and a non-editable install from PyPI, ~30-60 s) but part of the normal
run: it is what proves the CLI's light dependencies are enough and the server's stay out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import LiveServer

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_IDS = ("demo@local@fail", "demo@local@hello", "demo@local@sleep", "demo@local@sweep")
SERVER_ONLY = ("fastapi", "sqlalchemy", "asyncssh", "uvicorn")


@pytest.fixture(scope="module")
def cli_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project installed from a copy of its sources, no extras."""
    root = tmp_path_factory.mktemp("cli-only")
    # Build from a copy: an in-tree build would leave build/ and egg-info in the work tree.
    source = root / "source"
    source.mkdir()
    shutil.copy2(REPO_ROOT / "pyproject.toml", source / "pyproject.toml")
    shutil.copy2(REPO_ROOT / "README.md", source / "README.md")
    shutil.copytree(
        REPO_ROOT / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"),
    )
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            str(source),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
    return venv


def _clean_env(home: Path) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HW_", "PYTHON", "VIRTUAL_ENV")) and k not in ("COLUMNS", "LINES")
    }
    return {**base, "HOME": str(home)}


def _run(venv: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        env=_clean_env(home),
        cwd=home,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_waas_help_and_version(cli_venv: Path, tmp_path: Path) -> None:
    help_result = _run(cli_venv, tmp_path, "waas", "--help")
    assert help_result.returncode == 0, help_result
    assert "usage: waas" in help_result.stdout
    version = _run(cli_venv, tmp_path, "waas", "--version")
    assert version.returncode == 0, version
    assert version.stdout.strip().startswith("waas ")


def test_installed_not_editable(cli_venv: Path, tmp_path: Path) -> None:
    result = _run(cli_venv, tmp_path, "python", "-c", "import hpcwaas; print(hpcwaas.__file__)")
    assert result.returncode == 0, result
    assert str(cli_venv) in result.stdout, result.stdout


@pytest.mark.parametrize("module", SERVER_ONLY)
def test_server_dependencies_not_installed(cli_venv: Path, tmp_path: Path, module: str) -> None:
    result = _run(cli_venv, tmp_path, "python", "-c", f"import {module}")
    assert result.returncode != 0, f"{module} is importable in the CLI-only install"
    assert "ModuleNotFoundError" in result.stderr


def test_waas_lists_workflows_of_a_real_server(
    cli_venv: Path, tmp_path: Path, server: LiveServer, user: str
) -> None:
    token = server.token(user)
    result = _run(
        cli_venv, tmp_path, "waas", "--api_url", server.url, f"-t={token}", "workflows", "list"
    )
    assert result.returncode == 0, result
    assert "Traceback" not in result.stdout + result.stderr
    for workflow_id in DEMO_IDS:
        assert workflow_id in result.stdout, result.stdout


def test_the_whole_user_journey_runs_from_the_cli_only_install(
    cli_venv: Path, tmp_path: Path, server: LiveServer, user: str
) -> None:
    token = server.token(user)
    base = ("waas", "--api_url", server.url, f"-t={token}")
    keys = _run(cli_venv, tmp_path, *base, "ssh_keys", "key-gen")
    assert keys.returncode == 0 and "INFO: SSH key ID:" in keys.stdout, keys
    run = _run(
        cli_venv,
        tmp_path,
        *base,
        "workflows",
        "trigger",
        "-f",
        "-i",
        "name=Ada",
        "demo@local@hello",
    )
    assert run.returncode == 0 and "SUCCEEDED" in run.stdout, run
    execution_id = run.stdout.split("execution ID: ", 1)[1].split()[0]
    logs = _run(cli_venv, tmp_path, *base, "executions", "logs", execution_id)
    assert "Hello, Ada!" in logs.stdout, logs
    status = _run(cli_venv, tmp_path, *base, "executions", "status", execution_id)
    assert f"Execution: ID: {execution_id}, Status: SUCCEEDED" in status.stdout, status
    sleeping = _run(
        cli_venv,
        tmp_path,
        *base,
        "-o",
        "json",
        "workflows",
        "trigger",
        "-i",
        "seconds=300",
        "demo@local@sleep",
    )
    sleep_id = json.loads(sleeping.stdout)
    cancel = _run(cli_venv, tmp_path, *base, "executions", "cancel", sleep_id)
    assert cancel.returncode == 0 and f'Cancelled execution "{sleep_id}"' in cancel.stdout, cancel
