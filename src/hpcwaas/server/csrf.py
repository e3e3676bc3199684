"""Cross-site request forgery protection of logins.

The password form: a double-submit token. The form page sets a random value in a cookie
and in a hidden field; the POST must bring both, equal. Another site can make a browser
POST to the form, but can neither read the hidden field nor set the cookie (HttpOnly,
SameSite=Strict; on HTTPS the ``__Host-`` prefix also keeps sibling subdomains from
planting one). A POST that says where it comes from (``Origin``, ``Sec-Fetch-Site``) must
come from this server.

Single sign-on: the attempt's ``state`` is also set in a cookie of the browser that
started the login, and the provider's redirect back must bring the same state. Without
it, someone could start a login as themselves and send a victim the link back
(``/auth/authorize?code&state``): the victim would be logged in as the attacker. The
cookie is SameSite=Lax, since that redirect is a top-level navigation from another site.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any, Literal

from fastapi import Request, Response
from starlette.datastructures import URL, Headers

COOKIE_NAME = "hpcwaas_login_csrf"
SSO_STATE_COOKIE_NAME = "hpcwaas_sso_state"
COOKIE_PATH = "/auth"
# Long enough to type a password, short enough that a leaked value soon stops working.
MAX_AGE_SECONDS = 900
FIELD_NAME = "csrf_token"
_MAX_TOKEN_LENGTH = 128


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _cookie_name(request: Request, name: str = COOKIE_NAME) -> str:
    # Browsers accept a __Host- cookie only when it is Secure, has no Domain and Path=/.
    return f"__Host-{name}" if _secure(request) else name


def _cookie_options(request: Request, samesite: Literal["strict", "lax"]) -> dict[str, Any]:
    secure = _secure(request)
    return {
        "path": "/" if secure else COOKIE_PATH,
        "secure": secure,
        "httponly": True,
        "samesite": samesite,
    }


def new_token() -> str:
    """A fresh random value for the cookie and the hidden field."""
    return secrets.token_urlsafe(32)


def set_cookie(response: Response, request: Request, token: str) -> None:
    """Put ``token`` in the form's cookie on ``response``."""
    response.set_cookie(
        _cookie_name(request),
        token,
        max_age=MAX_AGE_SECONDS,
        **_cookie_options(request, "strict"),
    )


def clear_cookie(response: Response, request: Request) -> None:
    """Remove the form's cookie: its value has been used."""
    response.delete_cookie(_cookie_name(request), **_cookie_options(request, "strict"))


def bind_sso_state(response: Response, request: Request, state: str, max_age: int) -> None:
    """Tie a single sign-on attempt to this browser: its state in a cookie."""
    response.set_cookie(
        _cookie_name(request, SSO_STATE_COOKIE_NAME),
        state,
        max_age=max_age,
        **_cookie_options(request, "lax"),
    )


def sso_state_refusal(request: Request, state: str) -> str | None:
    """Why the provider's redirect back must be refused (for the log), or None."""
    cookie = request.cookies.get(_cookie_name(request, SSO_STATE_COOKIE_NAME))
    if not cookie:
        return "no login cookie: the login was started in another browser, or the cookie expired"
    if len(state) > _MAX_TOKEN_LENGTH or not hmac.compare_digest(cookie.encode(), state.encode()):
        return "the state is not the one of the login this browser started"
    return None


def clear_sso_state(response: Response, request: Request) -> None:
    """Remove the single sign-on cookie: its attempt has been used."""
    response.delete_cookie(
        _cookie_name(request, SSO_STATE_COOKIE_NAME), **_cookie_options(request, "lax")
    )


def own_origin(url: URL) -> str:
    """This server's origin as the browser sees it: scheme and host of the request's URL."""
    return f"{url.scheme}://{url.netloc}".lower()


def foreign_context(headers: Headers, url: URL, *, null_origin: bool) -> str | None:
    """Why a browser shows this request comes from another site (for errors), or None.

    Browsers send ``Origin`` on every cross-origin POST and ``Sec-Fetch-Site`` on every
    request; programs (curl, the `waas` clients) send neither. ``null_origin`` says whether
    ``Origin: null`` is accepted: it says nothing about the site, and the caller must then
    decide on something else (the login form's cookie).
    """
    origin = headers.get("origin")
    if origin is not None and not (null_origin and origin == "null"):
        if origin.lower() != own_origin(url):
            return f"Origin {origin[:100]!r} is not {own_origin(url)!r}"
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {fetch_site[:30]!r}"
    return None


def refusal(request: Request, submitted: str) -> str | None:
    """Why the form POST must be refused (for the log), or None when it is genuine."""
    # Under `Referrer-Policy: no-referrer` browsers send `Origin: null` even for a form of
    # this very server: "null" says nothing, and the cookie and Sec-Fetch-Site still decide.
    foreign = foreign_context(request.headers, request.url, null_origin=True)
    if foreign is not None:
        return foreign
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
