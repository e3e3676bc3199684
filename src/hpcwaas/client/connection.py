"""What the sync and async clients share: options, TLS, auth, timeouts and transport errors."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from hpcwaas.client.calls import Call
from hpcwaas.client.errors import ConfigurationError, ConnectionFailed

DEFAULT_API_URL = "https://127.0.0.1:9090"
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0

# OpenSSL's words for "the peer did not speak TLS": an https:// URL reached a plain-HTTP server.
_PLAIN_HTTP_MARKERS = (
    "wrong_version_number",
    "wrong version number",
    "record layer failure",
    "record_layer_failure",
    "http_request",
    "http request",
    "packet length too long",
    "unknown protocol",
)

# The server hung up before any HTTP answer (or, under TLS, in the middle of the handshake).
_CLOSED_MARKERS = ("server disconnected without sending", "unexpected eof", "eof occurred")

# OpenSSL's alerts for a missing or refused client certificate.
_CLIENT_CERT_MARKERS = (
    "certificate required",
    "certificate_required",
    "alert unknown ca",
    "alert_unknown_ca",
    "alert bad certificate",
    "alert_bad_certificate",
    "alert handshake failure",
    "alert_handshake_failure",
)

_UNKNOWN_HOST_MARKERS = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated with hostname",
    "getaddrinfo failed",
)


@dataclass(frozen=True)
class ConnectionOptions:
    """Where the API is and how to talk to it."""

    base_url: str = DEFAULT_API_URL
    token: str | None = None
    user: str | None = None
    password: str | None = None
    verify: bool = True
    ca_file: str | None = None
    ca_path: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    user_agent: str = "hpcwaas-client"

    @property
    def scheme(self) -> str:
        """The base URL's scheme, lower-cased ("" when it has none)."""
        return self.base_url.split("://", 1)[0].lower() if "://" in self.base_url else ""

    def check(self) -> None:
        """Raise ConfigurationError for options that cannot work together."""
        if self.scheme not in ("http", "https"):
            raise ConfigurationError(
                f"invalid API URL {self.base_url!r}: it must start with http:// or https://"
            )
        if self.token and self.user:
            raise ConfigurationError("give either a token or a user, not both")
        if self.key_file and not self.cert_file:
            raise ConfigurationError("a client key file needs its certificate file (cert_file)")

    def ssl_context(self) -> ssl.SSLContext | bool:
        """The TLS setting for httpx: a context when CA or client files are given, else a bool.

        An http:// base URL without TLS files gets a context that trusts no CA, which costs
        nothing to build: every request goes to the base URL (relative paths, redirects not
        followed), so TLS is never used, and httpx would otherwise load its CA bundle for
        nothing (tens of milliseconds of a `waas` command's start-up). An https:// request
        made anyway fails closed.
        """
        if not (self.ca_file or self.ca_path or self.cert_file):
            if self.scheme == "http":
                return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            return self.verify
        try:
            if self.ca_file or self.ca_path:
                context = ssl.create_default_context(cafile=self.ca_file, capath=self.ca_path)
            else:
                context = httpx.create_ssl_context()
            if self.cert_file:
                context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot load the TLS files: {exc}") from exc
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def httpx_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for httpx.Client / httpx.AsyncClient."""
        self.check()
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        auth = None
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.user:
            auth = httpx.BasicAuth(self.user, self.password or "")
        return {
            "base_url": self.base_url,
            "headers": headers,
            "auth": auth,
            "verify": self.ssl_context(),
            "timeout": httpx.Timeout(self.timeout, connect=self.connect_timeout),
        }

    def request_timeout(self, call: Call[Any]) -> httpx.Timeout | None:
        """The per-request timeout when a call needs a longer read than the client default."""
        if call.min_read_timeout is None or call.min_read_timeout <= self.timeout:
            return None
        return httpx.Timeout(self.timeout, connect=self.connect_timeout, read=call.min_read_timeout)


def build_request(
    http: httpx.Client | httpx.AsyncClient, options: ConnectionOptions, call: Call[Any]
) -> httpx.Request:
    """The httpx request of a call, with its long-poll timeout if it has one."""
    timeout = options.request_timeout(call)
    return http.build_request(
        call.method,
        call.path,
        params=call.params or None,
        json=call.json,
        timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
    )


def connection_failed(
    request: httpx.Request, exc: httpx.TransportError, options: ConnectionOptions | None = None
) -> ConnectionFailed:
    """Say which URL failed and why, in words a user can act on."""
    url = str(request.url.copy_with(query=None))
    text = _clean(str(exc)) or type(exc).__name__
    lowered = text.lower()
    closed = any(m in lowered for m in _CLOSED_MARKERS)
    if closed and request.url.scheme == "http":
        # A TLS server reached in plain HTTP drops the connection without a word.
        secure = request.url.copy_with(scheme="https", path="/", query=None)
        return ConnectionFailed(
            url,
            "the server closed the connection without answering (does it serve HTTPS?)",
            f"if it does, use an https:// URL, e.g. --api_url {str(secure).rstrip('/')}",
        )
    if request.url.scheme == "https" and any(m in lowered for m in _PLAIN_HTTP_MARKERS):
        plain = request.url.copy_with(scheme="http", path="/", query=None)
        return ConnectionFailed(
            url,
            "the server answered in plain HTTP, not HTTPS",
            f"use an http:// URL, e.g. --api_url {str(plain).rstrip('/')}",
        )
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        return ConnectionFailed(
            url,
            f"the server's TLS certificate is not trusted ({text})",
            "give its CA with --ca_file, or --skip_tls_verify for a test server",
        )
    if request.url.scheme == "https" and (
        any(m in lowered for m in _CLIENT_CERT_MARKERS) or closed
    ):
        return _client_certificate_refused(url, options)
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectionFailed(url, "timed out while connecting")
    if isinstance(exc, httpx.TimeoutException):
        return ConnectionFailed(url, "timed out waiting for the server's answer")
    if "connection refused" in lowered:
        return ConnectionFailed(url, "connection refused (is the server running on that port?)")
    if any(m in lowered for m in _UNKNOWN_HOST_MARKERS):
        return ConnectionFailed(url, f"unknown host {request.url.host!r}")
    return ConnectionFailed(url, text)


def _client_certificate_refused(url: str, options: ConnectionOptions | None) -> ConnectionFailed:
    # A server that wants a client certificate and gets none (or one it does not trust) ends
    # the TLS connection; under TLS 1.3 that is after the handshake, often with no alert the
    # client could read, so the likely cause is named rather than proven.
    if options is not None and options.cert_file:
        return ConnectionFailed(
            url,
            "the server ended the TLS connection without answering: it probably refused the "
            f"client certificate {options.cert_file}",
            "check that it is signed by a CA the server trusts and has not expired",
        )
    return ConnectionFailed(
        url,
        "the server ended the TLS connection without answering: it probably requires a "
        "client certificate",
        "give yours with --cert_file and --key_file (or HW_CERT_FILE and HW_KEY_FILE)",
    )


def _clean(message: str) -> str:
    # OpenSSL appends its source location, e.g. "(_ssl.c:1006)": noise for a user.
    return re.sub(r"\s*\(_ssl\.c:\d+\)", "", message).strip()


class ClientBase:
    """Constructor and options shared by `Client` and `AsyncClient`."""

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        *,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        verify: bool = True,
        ca_file: str | None = None,
        ca_path: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        user_agent: str = "hpcwaas-client",
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.options = ConnectionOptions(
            base_url=base_url,
            token=token,
            user=user,
            password=password,
            verify=verify,
            ca_file=ca_file,
            ca_path=ca_path,
            cert_file=cert_file,
            key_file=key_file,
            timeout=timeout,
            connect_timeout=connect_timeout,
            user_agent=user_agent,
        )
        self._open(self.options.httpx_kwargs(), transport)

    def _open(self, kwargs: dict[str, Any], transport: Any) -> None:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self.options.base_url
