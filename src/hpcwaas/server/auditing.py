"""Audit events of API requests: the caller's address and the request ID filled in.

Routes take ``Audit`` as a dependency and hand it to the use cases, which call ``record``
with the actor, action and target; inside a write transaction they pass its connection,
so the event commits with the change it describes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hpcwaas.logging_setup import request_id_var
from hpcwaas.server.deps import RuntimeDep
from hpcwaas.services.audit import AuditRecorder


async def get_audit(request: Request, runtime: RuntimeDep) -> AuditRecorder:
    # The peer address as the server sees it; a proxy in front shows as its own address.
    source = request.client.host if request.client else "unknown"
    return AuditRecorder(runtime.db, source, request_id_var.get())


Audit = Annotated[AuditRecorder, Depends(get_audit)]
