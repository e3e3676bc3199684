"""The connection cap fits the process's file limit, raised first if the hard limit allows."""

from __future__ import annotations

import logging
import resource

import pytest

from hpcwaas.server import protocol
from hpcwaas.settings import Limits


class FileLimit:
    """resource.getrlimit/setrlimit for RLIMIT_NOFILE, on (soft, hard) values of the test's."""

    def __init__(self, soft: int, hard: int) -> None:
        self.values = (soft, hard)

    def getrlimit(self, which: int) -> tuple[int, int]:
        assert which == resource.RLIMIT_NOFILE
        return self.values

    def setrlimit(self, which: int, values: tuple[int, int]) -> None:
        assert which == resource.RLIMIT_NOFILE and values[1] == self.values[1]
        self.values = values


@pytest.fixture
def limit(monkeypatch: pytest.MonkeyPatch) -> FileLimit:
    fake = FileLimit(1024, 1024)
    monkeypatch.setattr(protocol.resource, "getrlimit", fake.getrlimit)
    monkeypatch.setattr(protocol.resource, "setrlimit", fake.setrlimit)
    return fake


def test_the_soft_limit_is_raised_toward_the_hard_one(limit: FileLimit) -> None:
    limit.values = (1024, 1_000_000)
    cls = protocol.protocol_class(Limits(max_connections=4000))
    assert cls.guard.max_connections == 4000
    assert limit.values == (4000 + protocol.RESERVED_FILES, 1_000_000)


def test_a_cap_past_the_hard_limit_is_lowered_with_a_warning(
    limit: FileLimit, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        cls = protocol.protocol_class(Limits(max_connections=4000))
    assert cls.guard.max_connections == 1024 - protocol.RESERVED_FILES
    assert "limits.max_connections is 4000" in caplog.text
    assert "LimitNOFILE=" in caplog.text


def test_each_server_gets_its_own_waiting_connections(limit: FileLimit) -> None:
    first, second = (protocol.protocol_class(Limits(max_connections=10)) for _ in range(2))
    assert first.guard is not second.guard
