"""`/audit`: the audit log, for operators."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from hpcwaas.api.models import AuditEventList, AuditEventPublic
from hpcwaas.server.deps import OperatorUser, RuntimeDep, page_size
from hpcwaas.server.openapi import problems
from hpcwaas.server.problems import ApiProblem
from hpcwaas.services.audit import list_events
from hpcwaas.store.audit import AuditAction, AuditFilters, AuditPage, Outcome

router = APIRouter(tags=["audit"])


def _rfc3339(name: str, raw: str | None) -> datetime | None:
    """A query parameter's time; one without a zone is UTC. A 400 naming it if unreadable."""
    if raw is None:
        return None
    try:
        # fromisoformat alone takes "2026" or "20261125": a date and a time are required.
        if "T" not in raw.upper():
            raise ValueError(raw)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiProblem(
            400,
            f"query parameter {name!r} must be an RFC 3339 time such as "
            f"2026-11-25T10:00:00Z, got {raw[:64]!r}",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/audit", response_model=AuditEventList, responses=problems(403))
async def list_audit_events(
    runtime: RuntimeDep,
    _operator: OperatorUser,
    actor: str | None = None,
    action: AuditAction | None = None,
    target: str | None = None,
    outcome: Outcome | None = None,
    since: Annotated[str | None, Query(description="RFC 3339 time, inclusive.")] = None,
    until: Annotated[str | None, Query(description="RFC 3339 time, exclusive.")] = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> AuditEventList:
    """Audit events, newest first, paginated (`limit`, `cursor`); every filter given must match.

    `since` (inclusive) and `until` (exclusive) are RFC 3339 times. Operators only.
    """
    filters = AuditFilters(
        actor=actor,
        action=action.value if action else None,
        target=target,
        outcome=outcome.value if outcome else None,
        since=_rfc3339("since", since),
        until=_rfc3339("until", until),
    )
    page = AuditPage(limit=page_size(limit, runtime, default=50), cursor=cursor)
    events, next_cursor = await list_events(runtime.db, filters, page)
    return AuditEventList(
        events=[AuditEventPublic(**asdict(event)) for event in events],
        next_cursor=next_cursor,
    )
