"""Prometheus metrics: HTTP traffic per app, and the process-wide ones of hpcwaas.telemetry.

The process-wide metrics live in their own registry (not the client's default one), so that
importing a module twice or building several apps in one process never re-registers one.
Each app adds its own registry for its HTTP metrics and the executions and steps gauges.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpcwaas.telemetry import PROCESS_REGISTRY

if TYPE_CHECKING:
    from hpcwaas.settings import Settings

UNMATCHED = "unmatched"
UNKNOWN_KIND = "unknown"


class AppMetrics:
    """The metrics of one app, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Route templates, methods and statuses are few: this stays small.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.requests = Counter(
            "hpcwaas_http_requests",
            "HTTP requests answered.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "hpcwaas_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["route", "method"],
            registry=self.registry,
        )
        self.executions = Gauge(
            "hpcwaas_executions",
            "Executions in the database, by status.",
            ["status"],
            registry=self.registry,
        )
        self.steps = Gauge(
            "hpcwaas_steps",
            "Steps in the database, by step kind and state.",
            ["kind", "state"],
            registry=self.registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            # Looked up once per (route, method, status): labels() validates and locks.
            children = (
                self.requests.labels(route=route, method=method, status=str(status)),
                self.duration.labels(route=route, method=method),
            )
            self._children[key] = children
        counter, histogram = children
        counter.inc()
        histogram.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry) + generate_latest(PROCESS_REGISTRY)


def route_template(scope: Scope) -> str:
    """The matched route's template (``/executions/{execution_id}``), else ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class HttpMetrics:
    """Pure ASGI middleware counting and timing requests by route template."""

    def __init__(self, app: ASGIApp, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe(
                route_template(scope), scope["method"], status, time.perf_counter() - start
            )


async def _count_executions(request: Request, metrics: AppMetrics) -> None:
    from hpcwaas.api.states import ExecutionStatus
    from hpcwaas.store.executions import count_by_status

    runtime = request.app.state.runtime
    async with runtime.db.read() as conn:
        counts = await count_by_status(conn)
    for known in ExecutionStatus:
        metrics.executions.labels(status=known.value).set(counts.pop(known.value, 0))
    for other, n in counts.items():
        metrics.executions.labels(status=other).set(n)


async def _count_steps(request: Request, metrics: AppMetrics) -> None:
    """One grouped query; the kind of each step comes from the catalog (``unknown`` if gone)."""
    from hpcwaas.store.executions import count_steps_by_state

    runtime = request.app.state.runtime
    async with runtime.db.read() as conn:
        rows = await count_steps_by_state(conn)
    catalog = runtime.catalog
    counts: dict[tuple[str, str], int] = {}
    for workflow_id, name, state, n in rows:
        workflow = catalog.by_id(workflow_id)
        step = workflow.spec.steps.get(name) if workflow is not None else None
        kind = str(step.kind) if step is not None else UNKNOWN_KIND
        key = (kind, state)
        counts[key] = counts.get(key, 0) + n
    metrics.steps.clear()
    for (kind, state), n in counts.items():
        metrics.steps.labels(kind=kind, state=state).set(n)


def install_metrics(app: FastAPI, settings: Settings, metrics: AppMetrics) -> None:
    """Add ``GET /metrics``: public, or behind ``Authorization: Bearer <metrics_token>``."""
    from hpcwaas.server.problems import ApiProblem

    token = settings.metrics_token

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {token.get_secret_value()}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise ApiProblem(
                    401,
                    "this server's /metrics needs Authorization: Bearer <metrics_token>",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        await _count_executions(request, metrics)
        await _count_steps(request, metrics)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
