"""`/audit`: the audit log, for operators."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter

from hpcwaas.api.models import AuditEventList, AuditEventPublic
from hpcwaas.server.deps import OperatorUser, ServicesDep, page_size
from hpcwaas.store import audit as audit_store
from hpcwaas.store.audit import AuditAction, AuditFilters, AuditPage, Outcome

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=AuditEventList)
async def list_audit_events(
    services: ServicesDep,
    _operator: OperatorUser,
    actor: str | None = None,
    action: AuditAction | None = None,
    target: str | None = None,
    outcome: Outcome | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
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
        since=since,
        until=until,
    )
    page = AuditPage(limit=page_size(limit, services, default=50), cursor=cursor)
    async with services.db.read() as conn:
        events, next_cursor = await audit_store.query(conn, filters, page)
    return AuditEventList(
        events=[AuditEventPublic(**asdict(event)) for event in events],
        next_cursor=next_cursor,
    )
