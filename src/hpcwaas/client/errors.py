"""Exceptions raised by the SDK.

Hierarchy::

    HpcwaasError
     ├── ConfigurationError      bad client options (URL, TLS files, credentials); nothing was sent
     ├── ConnectionFailed        no HTTP answer: refused, DNS, TLS, timeout, plain HTTP on https://
     ├── UnexpectedResponse      a success status whose body or headers break the API contract
     ├── DownloadFailed          a downloaded output cannot be written or fails its SHA-256 check
     └── ApiError                an error status; ``errors`` holds the items of its envelope
          ├── BadRequest         400
          ├── Unauthorized       401
          ├── Forbidden          403
          ├── NotFound           404
          ├── Conflict           409
          ├── TooManyRequests    429 (``retry_after``)
          └── ServerError        5xx (``retry_after`` on 503)
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from hpcwaas.api.errors import ErrorItem


class HpcwaasError(Exception):
    """Base of every error the SDK raises."""


class ConfigurationError(HpcwaasError, ValueError):
    """The client was given options it cannot use; no request was sent."""


class UnexpectedResponse(HpcwaasError):
    """A success status whose body or headers do not match the API contract."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"unexpected response (HTTP {status}): {detail}")


class NotAnApi(HpcwaasError):
    """The address answered, but not as an hpcwaas API does (a web page, another server)."""

    def __init__(self, url: str, status: int, content_type: str) -> None:
        self.url = url
        self.status = status
        what = content_type.split(";")[0].strip() or "no content type"
        super().__init__(
            f"{url} does not answer as an hpcwaas API (HTTP {status}, {what}): "
            "check that --api_url is the API's address"
        )


def check_is_api(response: httpx.Response) -> None:
    """Raise NotAnApi when the answer cannot come from an hpcwaas API: an HTML page where
    JSON was expected, or a 404/405 without the API's error envelope (every route of the
    API answers with one)."""
    status = response.status_code
    content_type = response.headers.get("content-type", "")
    if 200 <= status < 300:
        foreign = content_type.startswith("text/html")
    else:
        foreign = status in (404, 405) and not _envelope_items(status, response.content)
    if foreign:
        raise NotAnApi(str(response.request.url), status, content_type)


class DownloadFailed(HpcwaasError):
    """A downloaded file could not be written, or does not match its SHA-256 (not kept)."""


class ConnectionFailed(HpcwaasError):
    """The request got no HTTP answer; ``url`` is what was tried, ``reason`` why it failed."""

    def __init__(self, url: str, reason: str, hint: str | None = None) -> None:
        self.url = url
        self.reason = reason
        self.hint = hint
        message = f"cannot reach {url}: {reason}"
        super().__init__(f"{message}; {hint}" if hint else message)


class ApiError(HpcwaasError):
    """The server answered with an error status; ``errors`` are the items of its envelope."""

    def __init__(
        self, status: int, errors: list[ErrorItem], retry_after: float | None = None
    ) -> None:
        self.status = status
        self.errors = errors
        self.retry_after = retry_after
        super().__init__("; ".join(describe_item(e) for e in errors))


class BadRequest(ApiError):
    """400: the request is invalid (the details say which part)."""


class Unauthorized(ApiError):
    """401: missing, malformed or expired credentials."""


class Forbidden(ApiError):
    """403: authenticated, but not allowed."""


class NotFound(ApiError):
    """404: no such resource, or not one of yours."""


class Conflict(ApiError):
    """409: the resource is not in a state that allows the operation."""


class TooManyRequests(ApiError):
    """429: slow down; ``retry_after`` says for how long when the server told."""


class ServerError(ApiError):
    """5xx: the server failed; a 503 is a known outage and may be retried later."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: TooManyRequests,
}

# Bodies that are not the envelope (proxy pages, stack traces) are cut to this length.
_MAX_DETAIL = 300


def describe_item(item: ErrorItem) -> str:
    """One readable line for an envelope item: ``not_found (404): <detail>``."""
    detail = item.detail or item.title
    return f"{item.id} ({item.status}): {detail}"


def api_error(
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> ApiError:
    """The typed error of an error response; one item is synthesized if it has no envelope.

    The envelope's model (and pydantic) is imported here, on the first error, rather than
    with the SDK: a command that succeeds never needs it.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    items = _envelope_items(status, body) or [_synthesized_item(status, body, headers)]
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(status, items, _retry_after(headers.get("retry-after")))


def _default_item(status: int) -> dict[str, Any]:
    from hpcwaas.api.errors import ERROR_IDS

    if status in ERROR_IDS:
        err_id, title = ERROR_IDS[status]
    else:
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        err_id = re.sub(r"\W+", "_", title.lower()).strip("_") or "error"
    return {"id": err_id, "status": status, "title": title, "detail": ""}


def _envelope_items(status: int, body: bytes) -> list[ErrorItem]:
    from hpcwaas.api.errors import ErrorItem

    try:
        data = json.loads(body)
    except ValueError:
        return []
    raw = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        return []
    items = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        # The original's Go structs use omitempty: fill missing fields from the status.
        merged = _default_item(status) | {k: v for k, v in entry.items() if v is not None}
        try:
            items.append(ErrorItem.model_validate(merged))
        except ValueError:
            continue
    return items


def _synthesized_item(status: int, body: bytes, headers: dict[str, str]) -> ErrorItem:
    from hpcwaas.api.errors import ErrorItem

    item = _default_item(status)
    text = body.decode("utf-8", "replace")
    # An HTML error page (a proxy's, a plain web server's): keep the visible text of its body.
    text = re.sub(r"(?is)<(head|style|script)\b.*?</\1\s*>", " ", text)
    text = " ".join(re.sub(r"<[^>]*>", " ", text).split())
    if 300 <= status < 400 and headers.get("location"):
        text = f"redirected to {headers['location']}" + (f": {text}" if text else "")
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3] + "..."
    item["detail"] = text or item["title"]
    return ErrorItem.model_validate(item)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare enough not to parse
