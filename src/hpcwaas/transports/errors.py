"""What a transport raises: one base, and subclasses that say whether another try may help.

All of them carry a message safe to show the user (never key material) and a ``retryable``
flag, decided where the error is raised::

    TransportError           anything else that failed (not retryable)
    ├── TransportUnavailable the place could not be reached, the connection dropped, or a
    │                        command outlived its timeout (retryable)
    ├── AccessRefused        the place refused us: unknown host key, key refused or gone
    │                        (not retryable)
    ├── CommandFailed        a command the engine needed ended with an error (not retryable)
    └── FileMissing          the file to read is not there (not retryable)

The SSH transport's own errors (``ssh_connection``) are subclasses of these.
"""

from __future__ import annotations


class TransportError(Exception):
    """A transport operation failed; the message is safe to show users."""

    retryable = False


class TransportUnavailable(TransportError):
    """The place could not be reached or stopped answering: retrying may help."""

    retryable = True


class AccessRefused(TransportError):
    """The place refused our identity, or we refused its: retrying will not help."""


class CommandFailed(TransportError):
    """A command the engine needed ran but ended with an error exit code."""


class FileMissing(TransportError):
    """The file to read does not exist."""
