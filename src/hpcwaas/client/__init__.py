"""Python SDK of the HPCWaaS REST API: `Client` (blocking) and `AsyncClient` (asyncio).

Both execute the same request builders and response parsers (`calls`), so they
behave identically. Errors are the typed tree of `hpcwaas.client.errors`.
"""

from hpcwaas.client.aio import AsyncClient
from hpcwaas.client.connection import DEFAULT_API_URL, ConnectionOptions
from hpcwaas.client.downloads import DownloadedOutput
from hpcwaas.client.errors import (
    ApiError,
    BadRequest,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    DownloadFailed,
    Forbidden,
    HpcwaasError,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    UnexpectedResponse,
)
from hpcwaas.client.sync import Client

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
    "NotFound",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "UnexpectedResponse",
]
