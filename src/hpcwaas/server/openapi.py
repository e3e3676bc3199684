"""The OpenAPI document: every error status a route can return, in the error envelope.

FastAPI documents only successes and a 422 that this server never sends (validation
errors are 400s in the envelope). ``install_openapi`` completes each operation from what
the route is made of, so that routes added later are described without more work:

- parameters or a body: 400; a path parameter: 404; a body: 413;
- the caller must be authenticated (the route depends on ``get_current_user``, directly
  or through another dependency): 401 with ``WWW-Authenticate``, 429 (too many failed
  credential checks), 503 (the identity provider, when its tokens are accepted, may be
  down; too many password checks waiting), and the ``security`` schemes;
- every route: 500, which is always a bug (its detail names a reference in the server log).

Statuses that depend on what a route does (403, 409, 429, ...) are declared on the route
with ``responses=problems(...)``; a route's own declaration wins over the inferred one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from hpcwaas.api import parameters
from hpcwaas.api.errors import ERROR_IDS, ErrorEnvelope
from hpcwaas.catalog.catalog import MAX_WORKFLOW_ID_LENGTH

ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"

_DESCRIPTIONS: dict[int, str] = {
    400: "The request is not valid; the detail says what to change.",
    401: "Missing or unusable credentials.",
    403: "Authenticated, but not allowed to do this.",
    404: "No such resource, or not yours.",
    409: "The resource is in a state that does not allow this.",
    413: "The request body is larger than limits.max_body_bytes.",
    429: "Too many requests; retry after Retry-After seconds.",
    500: "A bug; the detail names a reference in the server log.",
    503: "A known outage (database, key store or identity provider), or too many password "
    "checks waiting; retry later.",
}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "string"},
    }
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The accepted authentication schemes.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}


def problem_description(status: int) -> str:
    """The text an error status gets in the document."""
    title = ERROR_IDS.get(status, ("error", "Error"))[1]
    return f"{title}: {_DESCRIPTIONS.get(status, 'see the detail.')}"


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer these error statuses in the envelope."""
    # Content given explicitly: on an HTML route a `model` would be documented as text/html.
    return {status: _envelope_response(status) for status in statuses}


def _envelope_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": problem_description(status),
        "content": {"application/json": {"schema": {"$ref": ENVELOPE_REF}}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def _depends_on(dependant: Dependant, target: Callable[..., Any]) -> bool:
    return any(sub.call is target or _depends_on(sub, target) for sub in dependant.dependencies)


def _has_parameters(dependant: Dependant) -> bool:
    return bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or any(_has_parameters(sub) for sub in dependant.dependencies)
    )


def inferred_statuses(route: APIRoute, authenticated: bool) -> list[int]:
    """The error statuses a route can answer because of its parameters, body and auth."""
    statuses = [500]
    if _has_parameters(route.dependant):
        statuses.append(400)
    if route.dependant.path_params:
        statuses.append(404)
    if route.body_field is not None:
        statuses.append(413)
    if authenticated:
        statuses += [401, 429, 503]
    return sorted(statuses)


def complete_document(
    document: dict[str, Any], routes: list[Any], auth_dependency: Callable[..., Any]
) -> None:
    """Add the envelope, the inferred error statuses and the security schemes in place."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    envelope = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(envelope.pop("$defs", {}))
    schemas["ErrorEnvelope"] = envelope
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "A token of this server."},
        "basic": {
            "type": "http",
            "scheme": "basic",
            "description": "An account's user name and password (auth types local and basic).",
        },
    }
    # Routers included in the app are wrapped: walk the routes as FastAPI's own generator does.
    for context in iter_route_contexts(routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        authenticated = _depends_on(route.dependant, auth_dependency)
        path = context.path_format or route.path_format
        for method in route.methods or ():
            operation = document["paths"].get(path, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # validation errors are 400s in the envelope
            for status in inferred_statuses(route, authenticated):
                responses.setdefault(str(status), _envelope_response(status))
            if authenticated:
                operation["security"] = [{"bearer": []}, {"basic": []}]
    # Nothing refers to FastAPI's validation error models any more.
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def bound_page_sizes(document: dict[str, Any], max_page_size: int) -> None:
    """State the range of every `limit` query parameter: 1 to limits.max_page_size."""
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter.get("name") == "limit":
                    parameter["schema"] = {
                        "anyOf": [
                            {"type": "integer", "minimum": 1, "maximum": max_page_size},
                            {"type": "null"},
                        ],
                        "title": "Limit",
                    }
                    parameter["description"] = (
                        f"Page size, 1 to {max_page_size} (limits.max_page_size)."
                    )


# Parameters taken as strings and checked by the server against a form of
# hpcwaas.api.parameters: (path, in, name) -> (form, whether an empty value means "not given").
_FORMS: dict[tuple[str, str, str], tuple[str, bool]] = {
    ("/executions/{execution_id}/logs", "query", "from"): (parameters.POSITION, True),
    ("/executions/{execution_id}/logs", "query", "size"): (parameters.COUNT_OR_ALL, True),
    ("/executions/{execution_id}/logs", "query", "levels"): (parameters.LEVELS, True),
    ("/executions/{execution_id}/events", "query", "levels"): (parameters.LEVELS, True),
    ("/executions/{execution_id}/events", "header", "Last-Event-ID"): (
        parameters.COUNT_OR_ALL,
        True,
    ),
    ("/executions", "query", "cursor"): (parameters.KEYSET_CURSOR, True),
    ("/ssh_keys", "query", "cursor"): (parameters.KEYSET_CURSOR, True),
    ("/audit", "query", "cursor"): (parameters.AUDIT_CURSOR, True),
    ("/workflows/{workflow_id}", "path", "workflow_id"): (parameters.WORKFLOW_ID, False),
}
# What the server refuses beyond a form.
_MAX_LENGTHS = {"workflow_id": MAX_WORKFLOW_ID_LENGTH}


def declare_parameter_forms(document: dict[str, Any]) -> None:
    """Declare each string parameter the server parses with the exact form it accepts.

    Without it, the document calls any string valid, and e.g. `size=x` or `cursor=abc`
    would be valid requests answered 400.
    """
    unused = set(_FORMS)
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                key = (path, parameter["in"], parameter["name"])
                if key not in _FORMS:
                    continue
                unused.discard(key)
                form, may_be_empty = _FORMS[key]
                pattern = parameters.declared(form, may_be_empty=may_be_empty)
                schema: dict[str, Any] = {"type": "string", "pattern": pattern}
                if parameter["name"] in _MAX_LENGTHS:
                    schema["maxLength"] = _MAX_LENGTHS[parameter["name"]]
                parameter["schema"] = {**schema, "title": parameter["schema"].get("title")}
    if unused:
        raise RuntimeError(f"no such parameters in the OpenAPI document: {sorted(unused)}")


def install_openapi(app: FastAPI, auth_dependency: Callable[..., Any], max_page_size: int) -> None:
    """Serve the completed document at /openapi.json (built once, on first request)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            complete_document(document, app.routes, auth_dependency)
            bound_page_sizes(document, max_page_size)
            declare_parameter_forms(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
