"""The error envelope: ``{"errors":[{"id","status","title","detail"}]}``."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

# (id, title) by HTTP status, as the original API names them.
ERROR_IDS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not Found"),
    405: ("method_not_allowed", "Method Not Allowed"),
    408: ("request_timeout", "Request Timeout"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload Too Large"),
    415: ("unsupported_media_type", "Unsupported Media Type"),
    431: ("request_header_fields_too_large", "Request Header Fields Too Large"),
    429: ("too_many_requests", "Too Many Requests"),
    500: ("internal_server_error", "Internal Server Error"),
    503: ("service_unavailable", "Service Unavailable"),
}


class ErrorSource(BaseModel):
    """Additive: what an error is about, for programs (the page shows it next to that field)."""

    input: str | None = None  # the trigger input the error concerns


class ErrorItem(BaseModel):
    id: str
    status: int
    title: str
    detail: str
    source: ErrorSource | None = None  # additive; absent when the error concerns no one field


class ErrorEnvelope(BaseModel):
    errors: list[ErrorItem]


def error_item(status: int, detail: str, source: ErrorSource | None = None) -> ErrorItem:
    """Build one envelope item for an HTTP status."""
    err_id, title = ERROR_IDS.get(status, ("error", "Error"))
    return ErrorItem(id=err_id, status=status, title=title, detail=detail, source=source)


def envelope(
    status: int, *details: str, sources: Sequence[ErrorSource | None] = ()
) -> dict[str, object]:
    """The envelope as a JSON-ready dict, one item per detail; ``sources[i]`` goes with detail i."""
    items = [
        error_item(status, d, sources[i] if i < len(sources) else None)
        for i, d in enumerate(details)
    ]
    return ErrorEnvelope(errors=items).model_dump(exclude_none=True)
