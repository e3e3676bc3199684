"""One error base for every transport: whether a retry may help is decided by the class."""

from __future__ import annotations

import pytest

from hpcwaas.transports.errors import (
    AccessRefused,
    CommandFailed,
    FileMissing,
    TransportError,
    TransportUnavailable,
)
from hpcwaas.transports.ssh import HostKeyNotTrusted, SshAuthFailed, SshError, SshUnavailable


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        (TransportUnavailable, TransportUnavailable, True),
        (AccessRefused, AccessRefused, False),
        (CommandFailed, CommandFailed, False),
        (FileMissing, FileMissing, False),
        (SshError, TransportError, False),
        (SshUnavailable, TransportUnavailable, True),
        (HostKeyNotTrusted, AccessRefused, False),
        (SshAuthFailed, AccessRefused, False),
    ],
)
def test_every_transport_error_says_whether_a_retry_may_help(
    error: type[TransportError], kind: type[TransportError], retryable: bool
) -> None:
    raised = error("message")
    assert isinstance(raised, TransportError) and isinstance(raised, kind)
    assert raised.retryable is retryable
    assert str(raised) == "message"
