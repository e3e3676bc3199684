"""Route tests run in-process (tests/inprocess_support.py): the same requests and answers as
against a server process, in the fast suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.inprocess_support import InProcessServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """The embedded default, shared by the tests of a session; tests keep apart by users."""
    app = InProcessServer(tmp_path_factory.mktemp("inprocess") / "data")
    yield app
    app.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Callable[..., InProcessServer]]:
    """Starts an in-process server of the test's own, with the settings the test gives."""
    started: list[InProcessServer] = []

    def start(**settings: object) -> InProcessServer:
        app = InProcessServer(tmp_path / "data", **settings)
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()
