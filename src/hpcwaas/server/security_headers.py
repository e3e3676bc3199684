"""Security headers on every response (API JSON, HTML pages, portal files, errors): one place.

The content security policy allows nothing inline and nothing from elsewhere: the pages and
the web portal load their scripts and styles from /ui/ and talk only to this server.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
HSTS = "max-age=31536000"

_ALWAYS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)

# The portal's static files: the same for everyone, so caches may keep them.
STATIC_PREFIX = "/ui"
# Login form, token page, device logins: every answer may carry a token or a form secret.
AUTH_PREFIX = "/auth/"


class SecurityHeaders:
    """Pure ASGI middleware adding the security headers to each response as it starts.

    ``Strict-Transport-Security`` goes only on responses served over HTTPS (by this server's
    own TLS, or a proxy that says so in ``X-Forwarded-Proto``). ``Cache-Control: no-store``
    goes on everything but the portal's static files (API answers are per-user data), and
    overrides whatever a route set under /auth/.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        https = scope.get("scheme") == "https"
        static = path == STATIC_PREFIX or path.startswith(STATIC_PREFIX + "/")
        auth = path.startswith(AUTH_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", []))}
                headers = MutableHeaders(raw=message["headers"])
                for name, value in _ALWAYS:
                    headers[name] = value
                if https:
                    headers["Strict-Transport-Security"] = HSTS
                if auth or (not static and "cache-control" not in headers):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
