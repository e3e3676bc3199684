"""The audit log: recording events with who and where they came from, and listing them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.store import audit as audit_store
from hpcwaas.store.audit import (
    CLI_ACTOR,
    CLI_SOURCE,
    AuditAction,
    AuditEvent,
    AuditFilters,
    AuditPage,
    Outcome,
)
from hpcwaas.store.database import Database


@dataclass(frozen=True)
class AuditRecorder:
    """Records events from one origin: ``source`` is the client's IP address, or ``cli``."""

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


async def record_cli_event(
    db: Database,
    action: AuditAction,
    target: str | None,
    *,
    outcome: Outcome = Outcome.SUCCESS,
    details: dict[str, Any] | None = None,
    conn: AsyncConnection | None = None,
) -> None:
    """Audit an admin command's action (actor ``operator``, source ``cli``)."""
    recorder = AuditRecorder(db, CLI_SOURCE, None)
    await recorder.record(CLI_ACTOR, action, target, outcome=outcome, details=details, conn=conn)


async def list_events(
    db: Database, filters: AuditFilters, page: AuditPage
) -> tuple[list[AuditEvent], str | None]:
    """One page of the events matching ``filters``, newest first, and the next page's cursor."""
    async with db.read() as conn:
        return await audit_store.query(conn, filters, page)


def places_detail(places: dict[str, dict[str, str | None]] | None) -> dict[str, str]:
    """An execution's accounts on its other environments (none on a local one), as the
    ``places`` audit detail; no detail when its steps all run on its own environment."""
    if not places:
        return {}
    return {
        "places": "; ".join(
            f"{environment}: {account['login']} with key {account.get('key_id')}"
            + (f" (as {account['user_id']})" if account.get("user_id") else "")
            if account.get("login")
            else f"{environment}: this host"
            for environment, account in places.items()
        )
    }
