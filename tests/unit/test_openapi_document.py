"""The OpenAPI document describes every error a route can return, in the envelope."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcwaas.catalog.catalog import parse_workflow_id
from hpcwaas.server.app import create_app
from hpcwaas.server.routes.executions import parse_int, parse_levels
from hpcwaas.settings import Settings
from hpcwaas.store.audit import _decode_cursor as audit_cursor
from hpcwaas.store.pagination import decode_cursor


@pytest.fixture
def document(tmp_path: Path) -> dict[str, Any]:
    settings = Settings(data_dir=tmp_path, limits={"max_page_size": 250})
    result: dict[str, Any] = create_app(settings).openapi()
    return result


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][path][method]
    return operation


def test_validation_errors_are_documented_as_400_envelopes_never_422(
    document: dict[str, Any],
) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], f"{method} {path}"
    trigger = _operation(document, "post", "/workflows/{workflow_id}")
    bad = trigger["responses"]["400"]["content"]["application/json"]["schema"]
    assert bad == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_authenticated_routes_declare_401_with_its_header_and_the_security_schemes(
    document: dict[str, Any],
) -> None:
    whoami = _operation(document, "get", "/users/me")
    assert whoami["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert whoami["security"] == [{"bearer": []}, {"basic": []}]
    health = _operation(document, "get", "/healthz")
    assert "401" not in health["responses"] and "security" not in health


def test_route_specific_statuses_come_from_the_routes_and_the_shape_of_each_route(
    document: dict[str, Any],
) -> None:
    cancel = _operation(document, "delete", "/executions/{execution_id}")
    assert {"400", "401", "404", "409", "500"} <= set(cancel["responses"])
    create_key = _operation(document, "post", "/ssh_keys")
    assert {"413", "503"} <= set(create_key["responses"])
    assert "404" not in create_key["responses"]  # no path parameter


def test_page_sizes_are_documented_with_the_configured_maximum(document: dict[str, Any]) -> None:
    for path in ("/workflows", "/executions", "/ssh_keys"):
        limit = next(
            p for p in _operation(document, "get", path)["parameters"] if p["name"] == "limit"
        )
        assert limit["schema"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 250}


async def test_a_405_lists_every_method_of_the_path_in_allow(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=create_app(Settings(data_dir=tmp_path)))
    async with httpx.AsyncClient(transport=transport, base_url="http://hpcwaas") as client:
        answer = await client.request("PATCH", "/workflows/demo@local@hello")
    assert answer.status_code == 405
    assert {"GET", "POST"} <= {m.strip() for m in answer.headers["allow"].split(",")}
    assert answer.json()["errors"][0]["status"] == 405


# The requests a conformance run found declared valid but answered 400: (path, in, name, value).
REFUSED = [
    ("/executions/{execution_id}/events", "header", "Last-Event-ID", "null"),
    ("/executions/{execution_id}/logs", "query", "size", "x"),
    ("/executions", "query", "cursor", "__main__"),
    ("/workflows/{workflow_id}", "path", "workflow_id", "&"),
]


def _parameter(document: dict[str, Any], path: str, where: str, name: str) -> dict[str, Any]:
    for operation in document["paths"][path].values():
        for parameter in operation.get("parameters", []):
            if (parameter["in"], parameter["name"]) == (where, name):
                found: dict[str, Any] = parameter
                return found
    raise AssertionError(f"{path} has no {where} parameter {name}")


@pytest.mark.parametrize(("path", "where", "name", "value"), REFUSED)
def test_a_value_the_server_refuses_is_not_declared_valid(
    document: dict[str, Any], path: str, where: str, name: str, value: str
) -> None:
    schema = _parameter(document, path, where, name)["schema"]
    assert schema["type"] == "string"
    assert re.search(schema["pattern"], value) is None


@pytest.mark.parametrize(
    ("path", "where", "name", "accepts"),
    [
        (
            "/executions/{execution_id}/logs",
            "query",
            "from",
            lambda v: parse_int("from", v, 0, 0),
        ),
        (
            "/executions/{execution_id}/logs",
            "query",
            "size",
            lambda v: parse_int("size", v, -1, -1),
        ),
        ("/executions/{execution_id}/logs", "query", "levels", parse_levels),
        (
            "/executions/{execution_id}/events",
            "header",
            "Last-Event-ID",
            lambda v: parse_int("Last-Event-ID", v, -1, -1),
        ),
        ("/executions", "query", "cursor", lambda v: v == "" or decode_cursor(v)),
        ("/ssh_keys", "query", "cursor", lambda v: v == "" or decode_cursor(v)),
        ("/audit", "query", "cursor", lambda v: v == "" or audit_cursor(v)),
        ("/workflows/{workflow_id}", "path", "workflow_id", parse_workflow_id),
    ],
)
def test_every_value_declared_valid_is_accepted(
    document: dict[str, Any], path: str, where: str, name: str, accepts: Any
) -> None:
    schema = _parameter(document, path, where, name)["schema"]
    values = st.from_regex(schema["pattern"], fullmatch=True).filter(
        lambda v: len(v) <= schema.get("maxLength", len(v))
    )

    @given(values)
    @settings(max_examples=200, deadline=None)
    def accepted(value: str) -> None:
        accepts(value)  # raises (a 400) if the server refuses it

    accepted()
