"""The audit log: who did what, when, from where. ``record`` appends, ``query`` reads.

Every reader (the admin CLI, the API) goes through ``query``, so filters and pagination
behave the same everywhere. Events are never updated or deleted by the server.

``details`` is a small JSON object of plain values. It must never hold a secret: keys
that name one are refused here (a mistake in our code, which then fails in tests rather
than leaking), and values that look like one of our tokens or a private key are replaced
by ``[redacted]`` (values may come from clients, whose mistakes must not become errors).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.parameters import AUDIT_CURSOR, matches
from hpcwaas.store.pagination import BadCursor
from hpcwaas.store.tables import audit_events

__all__ = [
    "CLI_ACTOR",
    "CLI_SOURCE",
    "ENGINE_SOURCE",
    "UNKNOWN_ACTOR",
    "AuditAction",
    "AuditEvent",
    "AuditFilters",
    "AuditPage",
    "BadCursor",
    "Outcome",
    "query",
    "record",
]

# The actor of `hpcwaas-api` commands: whoever can run them administers the server.
CLI_ACTOR = "operator"
# The actor of a failed single sign-on, where no user could be named.
UNKNOWN_ACTOR = "anonymous"
CLI_SOURCE = "cli"
ENGINE_SOURCE = "engine"


class AuditAction(StrEnum):
    """What happened. Values are stable: operators filter on them."""

    LOGIN = "login"
    LOGOUT = "logout"
    TOKEN_ISSUE = "token.issue"  # noqa: S105 - an action name, not a secret
    TOKEN_REVOKE = "token.revoke"  # noqa: S105 - an action name, not a secret
    SSH_KEY_CREATE = "ssh_key.create"
    SSH_KEY_DELETE = "ssh_key.delete"
    SSH_KEY_USE = "ssh_key.use"
    SSH_CERTIFICATE_SIGN = "ssh_certificate.sign"  # a certificate the site's CA signed for us
    EXECUTION_TRIGGER = "execution.trigger"
    EXECUTION_CANCEL = "execution.cancel"
    IDENTITY_SET = "identity.set"
    IDENTITY_UNSET = "identity.unset"
    EXECUTION_DATA_REMOVE = "execution.data_remove"  # a user's early removal of its data
    RETENTION_SWEEP = "retention.sweep"  # what one retention sweep removed
    # an application's deployment started: by the first trigger that needed it, or by an
    # operator who ran it again (details.requested_by: "trigger", else the operator)
    DEPLOYMENT_RUN = "deployment.run"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True)
class AuditEvent:
    """One recorded event; ``id`` grows with every event."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    source: str
    request_id: str | None
    outcome: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object (``at`` in RFC 3339, UTC)."""
        return {
            "id": self.id,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "source": self.source,
            "request_id": self.request_id,
            "outcome": self.outcome,
            "details": self.details,
        }


@dataclass(frozen=True)
class AuditFilters:
    """Which events to read; every filter given must match (None: any)."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass(frozen=True)
class AuditPage:
    """How many events, newest first, and where to resume (a previous ``next_cursor``)."""

    limit: int = 50
    cursor: str | None = None


# Detail keys that name a secret; checked on the lower-cased key.
_SECRET_KEYS = re.compile(
    r"password|passwd|secret|private|credential|^(access_|refresh_|id_)?token$"
)
# Values that look like one of our bearer tokens (hpcwaas.auth.tokens) or a PEM key.
_SECRET_VALUES = re.compile(r"\bhw_[A-Za-z0-9_-]{20,}|PRIVATE KEY")
REDACTED = "[redacted]"
_MAX_DETAILS = 16
_MAX_VALUE = 256
_COLUMN_LIMITS = {"actor": 255, "target": 512, "source": 64, "request_id": 128}


def _clean_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """Plain values only, strings cut short; a ValueError for anything that may be a secret."""
    cleaned: dict[str, Any] = {}
    for key, value in (details or {}).items():
        if _SECRET_KEYS.search(key.lower()):
            raise ValueError(f"audit details must not hold secrets: key {key!r} refused")
        if isinstance(value, str):
            value = REDACTED if _SECRET_VALUES.search(value) else value[:_MAX_VALUE]
        elif value is not None and not isinstance(value, bool | int | float):
            raise ValueError(f"audit detail {key!r} must be a plain value, got {type(value)}")
        cleaned[key] = value
    if len(cleaned) > _MAX_DETAILS:
        raise ValueError(f"audit details hold at most {_MAX_DETAILS} keys")
    return cleaned


def _cut(name: str, value: str | None) -> str | None:
    return None if value is None else value[: _COLUMN_LIMITS[name]]


async def record(
    conn: AsyncConnection,
    *,
    actor: str,
    action: AuditAction,
    target: str | None,
    source: str,
    request_id: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append one event (in the caller's transaction, so it commits with what it records)."""
    await conn.execute(
        _INSERT,
        {
            "at": at or datetime.now(UTC),
            "actor": _cut("actor", actor) or "",
            "action": action.value,
            "target": _cut("target", target),
            "source": _cut("source", source) or "",
            "request_id": _cut("request_id", request_id),
            "outcome": outcome.value,
            "details": _clean_details(details),
        },
    )


# Built once, values as parameters: building a statement per call costs more than running it.
_INSERT = audit_events.insert()


def _encode_cursor(event_id: int) -> str:
    return str(event_id)


def _decode_cursor(cursor: str) -> int:
    # Any number is a position in the log (hpcwaas.api.parameters.AUDIT_CURSOR).
    if not matches(AUDIT_CURSOR, cursor):
        raise BadCursor(
            "cursor is not valid: pass the next_cursor value of a previous page unchanged"
        )
    return int(cursor)


async def query(
    conn: AsyncConnection, filters: AuditFilters, page: AuditPage
) -> tuple[list[AuditEvent], str | None]:
    """One page of the events matching ``filters``, newest first, and the next page's cursor.

    Keyset pagination on the growing ``id``: a page never repeats or skips an event because
    new ones were recorded meanwhile. Raises BadCursor for a cursor this did not produce,
    and ValueError for a limit below 1.
    """
    if page.limit < 1:
        raise ValueError(f"limit must be at least 1, got {page.limit}")
    c = audit_events.c
    stmt = select(audit_events)
    if filters.actor is not None:
        stmt = stmt.where(c.actor == filters.actor)
    if filters.action is not None:
        stmt = stmt.where(c.action == filters.action)
    if filters.target is not None:
        stmt = stmt.where(c.target == filters.target)
    if filters.outcome is not None:
        stmt = stmt.where(c.outcome == filters.outcome)
    if filters.since is not None:
        stmt = stmt.where(c.at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(c.at < filters.until)
    if page.cursor:
        stmt = stmt.where(c.id < _decode_cursor(page.cursor))
    rows = list(await conn.execute(stmt.order_by(c.id.desc()).limit(page.limit + 1)))
    events = [AuditEvent(**row._mapping) for row in rows[: page.limit]]
    more = len(rows) > page.limit
    return events, _encode_cursor(events[-1].id) if more else None
