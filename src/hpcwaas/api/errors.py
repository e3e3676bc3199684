"""The error envelope: ``{"errors":[{"id","status","title","detail"}]}``."""

from __future__ import annotations

from pydantic import BaseModel

# (id, title) by HTTP status, as the original API names them.
ERROR_IDS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not Found"),
    405: ("method_not_allowed", "Method Not Allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload Too Large"),
    415: ("unsupported_media_type", "Unsupported Media Type"),
    429: ("too_many_requests", "Too Many Requests"),
    500: ("internal_server_error", "Internal Server Error"),
    503: ("service_unavailable", "Service Unavailable"),
}


class ErrorItem(BaseModel):
    id: str
    status: int
    title: str
    detail: str


class ErrorEnvelope(BaseModel):
    errors: list[ErrorItem]


def error_item(status: int, detail: str) -> ErrorItem:
    """Build one envelope item for an HTTP status."""
    err_id, title = ERROR_IDS.get(status, ("error", "Error"))
    return ErrorItem(id=err_id, status=status, title=title, detail=detail)


def envelope(status: int, *details: str) -> dict[str, object]:
    """The envelope as a JSON-ready dict, one item per detail."""
    return ErrorEnvelope(errors=[error_item(status, d) for d in details]).model_dump()
