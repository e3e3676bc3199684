"""`/healthz` (the process answers) and `/readyz` (database and catalog usable)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hpcwaas.secrets.base import KeyStoreUnavailable
from hpcwaas.secrets.factory import ping
from hpcwaas.server.deps import RuntimeDep
from hpcwaas.store.database import (
    Database,
    DatabaseUnavailable,
    check_connection,
    sqlite_disk_problem,
)

router = APIRouter(tags=["health"])


# A load balancer's probe must get an answer even when the database hangs rather than refuses.
DATABASE_CHECK_SECONDS = 5.0


async def _database_check(db: Database) -> str:
    """``ok``, or ``unavailable: <why>`` (never the database password)."""
    try:
        async with asyncio.timeout(DATABASE_CHECK_SECONDS):
            async with db.read() as conn:
                await check_connection(conn)
    except TimeoutError:
        return f"unavailable: no answer within {DATABASE_CHECK_SECONDS:g} s"
    except DatabaseUnavailable as exc:
        return f"unavailable: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; report it
        return f"unavailable: {type(exc).__name__}"
    full = sqlite_disk_problem(db)
    return f"unavailable: {full}" if full else "ok"


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {
            "description": "Database, key store and catalog usable; `catalog_refused` lists "
            "the workflow files not loaded (file and first problem), if any."
        },
        503: {
            "description": "Not ready: `checks` says which part is not and why (the catalog "
            "is not ready only when every workflow file was refused)."
        },
    },
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {"database": await _database_check(runtime.db)}
    try:
        await ping(runtime.keystore)
        checks["key_store"] = "ok"
    except KeyStoreUnavailable as exc:
        checks["key_store"] = f"unavailable: {exc}"
    except DatabaseUnavailable:
        # The embedded key store keeps its sealed secrets in the database.
        checks["key_store"] = "unavailable: it is kept in the database, which is unreachable"
    catalog = runtime.catalog  # once: a reload may swap it
    refused = [
        {"file": str(path), "problem": str(problems[0]) if problems else "not loaded"}
        for path, problems in catalog.refused.items()
    ]
    if refused and not catalog.applications:
        # Nothing to serve: every file was refused. One refused file among good ones is not
        # a reason to take the whole service out of a load balancer; it is reported below.
        checks["catalog"] = f"no application loaded: {len(refused)} file(s) refused"
    else:
        checks["catalog"] = f"ok ({len(catalog.workflows)} workflows)"
    ready = all(v.startswith("ok") for v in checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": checks}
    if refused:
        body["catalog_refused"] = refused
    return JSONResponse(body, status_code=200 if ready else 503)
