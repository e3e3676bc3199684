"""Fixtures of the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, on SQLite and on the session's real PostgreSQL server
    (``postgres_url``, tests/pg_support.py): store tests that take it run on both."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'hpcwaas.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
