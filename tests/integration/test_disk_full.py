"""A full disk under the embedded default: an outage the server reports and recovers from.

The data directory is a small tmpfs the test mounts (root is needed, as for the cluster
tests); the test fills it, then frees it.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer, envelope_item, free_port, wait_for_status


@pytest.fixture
def small_data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    data.mkdir()
    if os.geteuid() != 0:
        pytest.fail("mounting a small filesystem for the data directory needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(data)], check=True)
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem has no space left; return it."""
    filler = directory / "filler"
    chunk = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        # The last partial chunk: fill to the last byte.
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_a_full_disk_is_a_503_and_not_ready_and_the_server_recovers_by_itself(
    small_data_dir: Path,
) -> None:
    server = LiveServer(small_data_dir, free_port()).start()
    try:
        token = server.token("disk-user")
        with server.client(token) as api:
            started = api.post("/workflows/demo@local@sleep", json={"inputs": {"seconds": 8}})
            assert started.status_code == 201, started.text
            running = started.headers["location"].rsplit("/", 1)[1]
            wait_for_status(api, running, {"RUNNING"})

            filler = _fill(small_data_dir)
            refused = api.post("/workflows/demo@local@hello", json={"inputs": {"name": "x"}})
            item = envelope_item(refused, 503)
            assert "disk is full" in item["detail"]
            assert refused.headers["retry-after"]
            ready = httpx.get(server.url + "/readyz", timeout=10)
            assert ready.status_code == 503
            assert "full" in ready.json()["checks"]["database"]

            time.sleep(2)
            filler.unlink()

            # Back by itself, within seconds: no restart.
            deadline = time.monotonic() + 15
            while True:
                again = api.post("/workflows/demo@local@hello", json={"inputs": {"name": "y"}})
                if again.status_code == 201 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert again.status_code == 201, again.text
            assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200

            # The execution that ran through the outage ends as it would have, its log whole.
            done = wait_for_status(api, running, {"SUCCEEDED", "FAILED"})
            assert done["status"] == "SUCCEEDED", done
            logs = api.get(
                f"/executions/{running}/logs", params={"timeout": "0s", "levels": 15}
            ).json()["logs"]
            contents = [entry["content"] for entry in logs]
            assert "Execution succeeded" in contents, contents
            assert any(c.startswith("Step") and c.endswith("succeeded") for c in contents)
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "already initialized" not in log
    assert "Traceback" not in log, log[-3000:]
