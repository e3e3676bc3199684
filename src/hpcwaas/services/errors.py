"""Why a use case refused a request; server/problems.py maps each kind to its HTTP status."""

from __future__ import annotations


class ServiceError(Exception):
    """A refused request: the message says why and what to do.

    ``input_name`` names the trigger input the message is about; ``retry_after`` says in how
    many seconds asking again may succeed.
    """

    def __init__(
        self, detail: str, *, input_name: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.input_name = input_name
        self.retry_after = retry_after


class InvalidRequest(ServiceError):
    """The request itself is wrong: a bad value, a missing input."""


class Forbidden(ServiceError):
    """The caller may not do this."""


class NotFound(ServiceError):
    """What the request names does not exist, or is not the caller's to see."""


class Conflict(ServiceError):
    """The request does not fit the current state: a limit held, an execution still running."""


class LimitExceeded(ServiceError):
    """The caller asked too much too soon; ``retry_after`` says when to ask again."""


class Unavailable(ServiceError):
    """Part of the work could not be done now; ``retry_after`` says when to ask again."""
