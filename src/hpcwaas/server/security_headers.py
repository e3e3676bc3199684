"""Security headers on every response (API JSON, HTML pages, portal files, errors): one place.

The content security policy allows nothing inline and nothing from elsewhere: the pages and
the web portal load their scripts and styles from /ui/ and talk only to this server.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
HSTS = "max-age=31536000"

# Raw ASGI headers, encoded once: building them per response was a tenth of a cached read.
_ALWAYS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_HSTS = (b"strict-transport-security", HSTS.encode())
_NO_STORE = (b"cache-control", b"no-store")
# What a route may have set that this middleware decides (it replaces them).
_SET_HERE = frozenset(name for name, _ in [*_ALWAYS, _HSTS])

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
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in _SET_HERE
                ]
                cached = any(name.lower() == b"cache-control" for name, _ in headers)
                headers += _ALWAYS
                if https:
                    headers.append(_HSTS)
                if auth or (not static and not cached):
                    headers = [h for h in headers if h[0].lower() != b"cache-control"]
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
