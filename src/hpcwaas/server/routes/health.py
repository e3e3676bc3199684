"""`/healthz` (the process answers) and `/readyz` (database and catalog usable)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from hpcwaas.secrets.base import KeyStoreUnavailable
from hpcwaas.secrets.factory import ping
from hpcwaas.server.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"description": "Database, key store and catalog usable."},
        503: {"description": "Not ready: `checks` says which part is not."},
    },
)
async def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        async with services.db.read() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; report it
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        await ping(services.keystore)
        checks["key_store"] = "ok"
    except KeyStoreUnavailable as exc:
        checks["key_store"] = f"unavailable: {exc}"
    checks["catalog"] = f"ok ({len(services.catalog.workflows)} workflows)"
    ready = all(v.startswith("ok") for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
