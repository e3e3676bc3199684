"""Audit events of API requests: the caller's address and the request ID filled in.

Routes take ``Audit`` as a dependency and call ``record`` with the actor, action and
target; inside a write transaction they pass its connection, so the event commits with
the change it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.logging_setup import request_id_var
from hpcwaas.server.deps import ServicesDep
from hpcwaas.store import audit as audit_store
from hpcwaas.store.audit import AuditAction, Outcome
from hpcwaas.store.database import Database


@dataclass(frozen=True)
class RequestAudit:
    """Records events of one request: ``source`` is the client's IP address."""

    db: Database
    source: str
    request_id: str | None

    async def record(
        self,
        actor: str,
        action: AuditAction,
        target: str | None,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        details: dict[str, Any] | None = None,
        conn: AsyncConnection | None = None,
    ) -> None:
        """Append one event: in ``conn``'s transaction if given, else in one of its own."""
        fields: dict[str, Any] = {
            "actor": actor,
            "action": action,
            "target": target,
            "source": self.source,
            "request_id": self.request_id,
            "outcome": outcome,
            "details": details,
        }
        if conn is not None:
            await audit_store.record(conn, **fields)
            return
        async with self.db.write() as own:
            await audit_store.record(own, **fields)


async def get_audit(request: Request, services: ServicesDep) -> RequestAudit:
    # The peer address as the server sees it; a proxy in front shows as its own address.
    source = request.client.host if request.client else "unknown"
    return RequestAudit(services.db, source, request_id_var.get())


Audit = Annotated[RequestAudit, Depends(get_audit)]
