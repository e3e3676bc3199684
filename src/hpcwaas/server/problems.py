"""HTTP errors in the envelope (docs/compatibility.md, "Errors"), and the one table mapping
domain errors to them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from hpcwaas.api.errors import ErrorSource, envelope
from hpcwaas.auth.identity import AuthenticationFailed
from hpcwaas.auth.oidc import ProviderError
from hpcwaas.auth.sso import LoginFailed
from hpcwaas.auth.throttle import Throttled
from hpcwaas.catalog.errors import (
    InputValidationError,
    MalformedWorkflowId,
    WorkflowForbidden,
    WorkflowNotFound,
)
from hpcwaas.engine.errors import ExecutionAlreadyFinished
from hpcwaas.secrets.base import KeyStoreUnavailable
from hpcwaas.services.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    ServiceError,
    Unavailable,
)
from hpcwaas.store.database import DatabaseUnavailable, is_disk_full, is_unavailable
from hpcwaas.store.pagination import BadCursor

log = logging.getLogger(__name__)


class ApiProblem(Exception):
    """An error response: status, one or more details, optional headers.

    ``source_input`` names the trigger input the (first) detail is about, as ``source.input``.
    """

    def __init__(
        self,
        status: int,
        *details: str,
        headers: dict[str, str] | None = None,
        source_input: str | None = None,
    ) -> None:
        super().__init__(details[0] if details else str(status))
        self.status = status
        self.details = details or ("",)
        self.headers = headers or {}
        self.sources = [ErrorSource(input=source_input)] if source_input else []


def not_found(what: str, ident: str) -> ApiProblem:
    return ApiProblem(404, f"{what} {ident!r} not found")


# Domain error -> HTTP status. The exception's message is the detail.
_STATUS_BY_ERROR: dict[type[Exception], int] = {
    MalformedWorkflowId: 400,
    BadCursor: 400,
    WorkflowNotFound: 404,
    WorkflowForbidden: 403,
    ExecutionAlreadyFinished: 409,
    LoginFailed: 400,
}

# A use case's refusal -> HTTP status. The message is the detail; ``input_name`` its source.
_STATUS_BY_REFUSAL: dict[type[ServiceError], int] = {
    InvalidRequest: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    LimitExceeded: 429,
    Unavailable: 503,
}


# A 429 always says when to come back (docs/compatibility.md, "Errors"); this is the fallback
# if its raiser did not.
DEFAULT_RETRY_AFTER = "30"


def problem_response(
    status: int,
    *details: str,
    headers: dict[str, str] | None = None,
    sources: Sequence[ErrorSource | None] = (),
) -> JSONResponse:
    """The error envelope for ``status``, one item per detail."""
    headers = dict(headers or {})
    if status == 429 and not any(k.lower() == "retry-after" for k in headers):
        headers["Retry-After"] = DEFAULT_RETRY_AFTER
    return JSONResponse(
        envelope(status, *details, sources=sources), status_code=status, headers=headers
    )


def install_error_handlers(app: FastAPI, challenge: str) -> None:
    """Every error, including unknown routes and bugs, leaves in the envelope."""

    @app.exception_handler(ApiProblem)
    async def _problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.status, *exc.details, headers=exc.headers, sources=exc.sources)

    @app.exception_handler(AuthenticationFailed)
    async def _unauthorized(_: Request, exc: AuthenticationFailed) -> JSONResponse:
        return problem_response(401, str(exc), headers={"WWW-Authenticate": challenge})

    @app.exception_handler(Throttled)
    async def _throttled(_: Request, exc: Throttled) -> JSONResponse:
        return problem_response(exc.status, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(InputValidationError)
    async def _inputs(_: Request, exc: InputValidationError) -> JSONResponse:
        # Each item names its input (``source.input``) so a form can show it by the field.
        sources = [None if name is None else ErrorSource(input=name) for name in exc.inputs]
        return problem_response(400, *exc.problems, sources=sources)

    @app.exception_handler(KeyStoreUnavailable)
    async def _keystore(_: Request, exc: KeyStoreUnavailable) -> JSONResponse:
        log.error("key store unavailable: %s", exc)
        return problem_response(
            503, "the key store is unavailable; try again shortly", headers={"Retry-After": "30"}
        )

    @app.exception_handler(ProviderError)
    async def _provider(_: Request, exc: ProviderError) -> JSONResponse:
        log.warning("identity provider: %s", exc)
        return problem_response(503, str(exc), headers={"Retry-After": "30"})

    for refusal_type, status in _STATUS_BY_REFUSAL.items():

        async def _refused(_: Request, exc: Exception, status: int = status) -> JSONResponse:
            assert isinstance(exc, ServiceError)
            headers = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
            sources = [ErrorSource(input=exc.input_name)] if exc.input_name else []
            return problem_response(status, str(exc), headers=headers, sources=sources)

        app.add_exception_handler(refusal_type, _refused)

    for error_type, status in _STATUS_BY_ERROR.items():

        async def _mapped(_: Request, exc: Exception, status: int = status) -> JSONResponse:
            return problem_response(status, str(exc))

        app.add_exception_handler(error_type, _mapped)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}"
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(exc.status_code, detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(400, *_describe_validation(exc))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_error_response(request.method, request.url.path, exc)


def unexpected_error_response(method: str, path: str, exc: Exception) -> JSONResponse:
    """The answer to an exception no handler claimed: 503 when the database is unreachable,
    else a 500 whose reference finds the traceback in the log."""
    if is_unavailable(exc):
        # Not a bug: the database is restarting, out of reach or out of space. The client
        # retries; the operator finds one line (no traceback) naming the database and the cause.
        full = is_disk_full(exc)
        log.warning("%s %s: %s", method, path, DATABASE_FULL_LOG if full else _database_reason(exc))
        return problem_response(
            503,
            DATABASE_FULL if full else DATABASE_UNREACHABLE,
            headers={"Retry-After": DATABASE_RETRY_AFTER},
        )
    reference = uuid.uuid4().hex[:12]
    log.exception("internal error %s on %s %s", reference, method, path)
    return problem_response(
        500, f"internal error (reference {reference}); the server log has the details"
    )


DATABASE_UNREACHABLE = (
    "the service cannot reach its database (it may be restarting); retry in a few seconds"
)
DATABASE_FULL = "the service's database has no space left to write (its disk is full); retry later"
DATABASE_FULL_LOG = "the database's disk is full: writes fail until space is freed"
DATABASE_RETRY_AFTER = "5"


def _database_reason(exc: BaseException) -> str:
    """The database error's own message (DatabaseUnavailable names the URL without its
    password), else its type: driver messages may quote the statement and its values."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DatabaseUnavailable):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return f"the database is unreachable ({type(exc).__name__})"


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (the router names only the first route's)."""
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        route = context.original_route
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] != Match.NONE:
            methods |= set(route_methods)
    return sorted(methods)


def _describe_validation(exc: RequestValidationError) -> list[str]:
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "request"
        field = ".".join(loc[1:])
        if err.get("type") == "json_invalid":
            details.append(
                f"request body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})"
            )
        elif err.get("type") == "extra_forbidden":
            details.append(f"{where} field {field!r} is not accepted")
        elif field:
            details.append(f"{where} field {field!r}: {err.get('msg')}")
        else:
            details.append(f"{where}: {err.get('msg')}")
    return details or ["the request is not valid"]
