"""Python SDK of the HPCWaaS REST API: `Client` (blocking) and `AsyncClient` (asyncio).

Both execute the same request builders and response parsers (`calls`), so they
behave identically. Errors are the typed tree of `hpcwaas.client.errors`.

`AsyncClient` and `DownloadedOutput` are imported on first use: a program using the
blocking client (`waas`) starts without compiling the asyncio one.
"""

from typing import TYPE_CHECKING, Any

from hpcwaas.client.connection import DEFAULT_API_URL, ConnectionOptions
from hpcwaas.client.errors import (
    ApiError,
    BadRequest,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    DownloadFailed,
    Forbidden,
    HpcwaasError,
    NotAnApi,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    UnexpectedResponse,
)
from hpcwaas.client.sync import Client

if TYPE_CHECKING:
    from hpcwaas.client.aio import AsyncClient
    from hpcwaas.client.downloads import DownloadedOutput

__all__ = [
    "DEFAULT_API_URL",
    "ApiError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "ConnectionOptions",
    "DownloadFailed",
    "DownloadedOutput",
    "Forbidden",
    "HpcwaasError",
    "NotAnApi",
    "NotFound",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "UnexpectedResponse",
]


def __getattr__(name: str) -> Any:
    if name == "AsyncClient":
        from hpcwaas.client.aio import AsyncClient

        return AsyncClient
    if name == "DownloadedOutput":
        from hpcwaas.client.downloads import DownloadedOutput

        return DownloadedOutput
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
