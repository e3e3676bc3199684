"""The authenticated caller, passed explicitly to everything that needs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Identity:
    user_id: str
    display_name: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    # set when the caller used one of this server's tokens (so it can be revoked)
    token_id: str | None = None
    token_expires_at: datetime | None = None


class AuthenticationFailed(Exception):
    """Credentials missing or refused; the message is safe to show.

    The messages keep the original's wording (docs/compatibility.md, "Errors").
    """


# The original's 401 details.
AUTH_REQUIRED = "Authorization Required"
INVALID_FORMAT = "Invalid authorization format"
INVALID_TOKEN = "Invalid authorization token"  # noqa: S105 - a message, not a secret
SESSION_EXPIRED = "You are not logged in or your session has expired"
