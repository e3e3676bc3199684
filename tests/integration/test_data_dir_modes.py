"""The embedded default's data directory is private: 0700, its SQLite files 0600 as master.key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import LiveServer


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common umask (022), inherited by the server and its admin commands."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("first", ["server", "admin command"])
def test_data_dir_and_database_files_are_private_to_the_servers_account(
    fresh_server: LiveServer, first: str
) -> None:
    # Whichever creates the data directory: the server, or a token issued before it ever ran.
    if first == "server":
        fresh_server.start()
        token = fresh_server.token("alice")
    else:
        token = fresh_server.token("alice")
        fresh_server.start()
    with fresh_server.client(token) as api:
        assert api.post("/ssh_keys").status_code == 201  # master.key exists, the WAL is in use
    data_dir = fresh_server.data_dir
    assert mode(data_dir) == 0o700
    private = ["hpcwaas.sqlite3", "hpcwaas.sqlite3-shm", "hpcwaas.sqlite3-wal", "master.key"]
    assert {name: mode(data_dir / name) for name in private} == dict.fromkeys(private, 0o600)
