"""The FastAPI application factory; its lifespan owns the database, engine and key store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from hpcwaas import __version__
from hpcwaas.auth.authenticator import challenge_for
from hpcwaas.server.bodylimit import BodySizeLimit
from hpcwaas.server.deps import get_current_user
from hpcwaas.server.json_requests import JsonRequests
from hpcwaas.server.metrics import AppMetrics, HttpMetrics, install_metrics
from hpcwaas.server.openapi import install_openapi
from hpcwaas.server.problems import install_error_handlers
from hpcwaas.server.requestid import RequestId
from hpcwaas.server.routes import (
    audit,
    auth,
    deployments,
    environments,
    events,
    execution_data,
    executions,
    health,
    list_events,
    outputs,
    schemas,
    ssh_keys,
    users,
    workflows,
)
from hpcwaas.server.runtime import start_runtime, stop_runtime
from hpcwaas.server.security_headers import SecurityHeaders
from hpcwaas.services.ratelimit import TriggerRateLimiter
from hpcwaas.services.runtime import Runtime
from hpcwaas.settings import Settings

UI_DIR = Path(__file__).parent / "ui"


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """Build the app around a running ``runtime``, or start its own in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime or await start_runtime(settings)
        try:
            yield
        finally:
            if runtime is None:
                await stop_runtime(app.state.runtime)

    app = FastAPI(
        title="hpcwaas",
        version=__version__,
        description="HPC Workflows as a Service: trigger and follow HPC workflows.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    for module in (
        workflows,
        executions,
        execution_data,
        outputs,
        events,
        list_events,
        ssh_keys,
        environments,
        users,
        auth,
        audit,
        deployments,
        health,
        schemas,
    ):
        app.include_router(module.router)
    # The web portal: public static files; everything they show comes from the API.
    app.mount("/ui", StaticFiles(directory=UI_DIR, html=True), name="ui")
    # Per process: each replica enforces the trigger rate on its own.
    app.state.trigger_limiter = TriggerRateLimiter(settings.limits.max_triggers_per_minute)
    metrics = AppMetrics()
    app.state.metrics = metrics
    install_metrics(app, settings, metrics)
    install_error_handlers(app, challenge_for(settings.auth.auth_type))
    install_openapi(app, get_current_user, settings.limits.max_page_size)
    app.add_middleware(BodySizeLimit, max_bytes=settings.limits.max_body_bytes)
    app.add_middleware(JsonRequests, form_paths=(auth.LOGIN_URL,))
    # Added last, so outermost: they see every response, the body limit's 413 included.
    app.add_middleware(HttpMetrics, metrics=metrics)
    app.add_middleware(RequestId)
    # Outermost of all: even the 500 that RequestId writes for a bug gets the headers.
    app.add_middleware(SecurityHeaders)
    return app
