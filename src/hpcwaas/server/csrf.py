"""Cross-site request forgery protection of the login form: a double-submit token.

The form page sets a random value in a cookie and in a hidden field; the POST must bring
both, equal. Another site can make a browser POST to the form, but can neither read the
hidden field nor set the cookie (HttpOnly, SameSite=Strict; on HTTPS the ``__Host-`` prefix
also keeps sibling subdomains from planting one). A POST that says where it comes from
(``Origin``, ``Sec-Fetch-Site``) must come from this server.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

COOKIE_NAME = "hpcwaas_login_csrf"
# Browsers accept a __Host- cookie only when it is Secure, has no Domain and Path=/.
SECURE_COOKIE_NAME = f"__Host-{COOKIE_NAME}"
COOKIE_PATH = "/auth"
# Long enough to type a password, short enough that a leaked value soon stops working.
MAX_AGE_SECONDS = 900
FIELD_NAME = "csrf_token"
_MAX_TOKEN_LENGTH = 128


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _cookie_name(request: Request) -> str:
    return SECURE_COOKIE_NAME if _secure(request) else COOKIE_NAME


def new_token() -> str:
    """A fresh random value for the cookie and the hidden field."""
    return secrets.token_urlsafe(32)


def set_cookie(response: Response, request: Request, token: str) -> None:
    """Put ``token`` in the form's cookie on ``response``."""
    secure = _secure(request)
    response.set_cookie(
        _cookie_name(request),
        token,
        max_age=MAX_AGE_SECONDS,
        path="/" if secure else COOKIE_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request) -> None:
    """Remove the form's cookie: its value has been used."""
    secure = _secure(request)
    response.delete_cookie(
        _cookie_name(request),
        path="/" if secure else COOKIE_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def own_origin(request: Request) -> str:
    """This server's origin as the browser sees it: scheme and host of the request."""
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def refusal(request: Request, submitted: str) -> str | None:
    """Why the form POST must be refused (for the log), or None when it is genuine."""
    origin = request.headers.get("origin")
    # Under `Referrer-Policy: no-referrer` browsers send `Origin: null` even for a form of
    # this very server: "null" says nothing, and the cookie and Sec-Fetch-Site still decide.
    if origin is not None and origin != "null" and origin.lower() != own_origin(request):
        return f"Origin {origin[:100]!r} is not {own_origin(request)!r}"
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {fetch_site[:30]!r}"
    cookie = request.cookies.get(_cookie_name(request))
    if not cookie:
        return "no form cookie (expired, blocked, or a cross-site POST)"
    if not submitted:
        return "no form token in the POST"
    if len(submitted) > _MAX_TOKEN_LENGTH or not hmac.compare_digest(
        cookie.encode(), submitted.encode()
    ):
        return "the form token does not match its cookie"
    return None
