"""What the container images run, run here (no container engine on these machines):
the server image's install steps in a fresh virtual environment, then its entry point."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
from tests.conftest import free_port

ROOT = Path(__file__).parents[2]
CONTAINERS = ROOT / "containers"


def test_server_image_install_and_entry_point_serve_the_embedded_default(tmp_path: Path) -> None:
    venv = tmp_path / "opt-hpcwaas"
    install = subprocess.run(
        ["sh", str(CONTAINERS / "install.sh"), str(ROOT), str(venv), "server"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HPCWAAS_DATA_DIR": str(tmp_path / "data"),
        "HPCWAAS_CONFIG": str(tmp_path / "absent.yml"),
    }
    usage = subprocess.run(
        ["sh", str(CONTAINERS / "server-entrypoint.sh"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert usage.returncode == 0 and "hpcwaas-api" in usage.stdout, usage.stderr
    port = free_port()
    server = subprocess.Popen(
        ["sh", str(CONTAINERS / "server-entrypoint.sh")],
        env={**env, "HPCWAAS_LISTEN": f"127.0.0.1:{port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("the image's entry point did not serve /healthz in 30 s")
        assert (tmp_path / "data" / "hpcwaas.sqlite3").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not os.path.exists(tmp_path / "absent.yml")
