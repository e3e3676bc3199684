"""`/auth/*`: logging in (form, or single sign-on), device logins, logging out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from hpcwaas.api.models import (
    AuthInfo,
    DeviceAuthorization,
    DevicePending,
    DeviceTokenRequest,
    TokenIssued,
)
from hpcwaas.auth.sso import SingleSignOn
from hpcwaas.auth.tokens import issue_token
from hpcwaas.server.deps import CurrentUser, ServicesDep
from hpcwaas.server.pages import page
from hpcwaas.server.problems import ApiProblem
from hpcwaas.server.services import Services
from hpcwaas.store import users as user_store

router = APIRouter(tags=["auth"])

LOGIN_URL = "/auth/login"
# Where the web portal lives: the only place a login may send the browser back to.
PORTAL_PREFIX = "/ui/"
NEXT_COOKIE = "hpcwaas_next"
NEXT_COOKIE_SECONDS = 600


def portal_next(raw: str | None) -> str | None:
    """``raw`` if it is a path of the portal (``/ui/...``), else None: never an open redirect."""
    if not raw or len(raw) > 1024 or not raw.startswith(PORTAL_PREFIX):
        return None
    path = raw.split("#", 1)[0].split("?", 1)[0]
    # No backslashes, control characters or `..` segments that a browser could turn elsewhere.
    if "\\" in raw or any(ord(c) < 0x21 or ord(c) == 0x7F for c in raw):
        return None
    if ".." in path.split("/") or "//" in path:
        return None
    return raw


def _sso(services: Services) -> SingleSignOn:
    if services.sso is None:
        raise ApiProblem(
            404,
            f"single sign-on is not configured on this server (auth_type "
            f"{services.settings.auth.auth_type}): log in at {LOGIN_URL}",
        )
    return services.sso


def _token_page(
    request: Request,
    token: str,
    user_id: str,
    name: str | None,
    expires: str,
    next_path: str | None = None,
) -> HTMLResponse:
    return page(
        "token.html",
        display_name=name or user_id,
        user_id=user_id,
        token=token,
        expires_at=expires,
        api_url=str(request.base_url).rstrip("/"),
        next=next_path,
    )


@router.get(LOGIN_URL, response_model=None)
async def login_start(request: Request, services: ServicesDep, next: str | None = None) -> Response:
    """Single sign-on: off to the identity provider. Otherwise: the login form.

    ``next``, a path of the web portal (``/ui/...``), is where the browser goes once logged
    in, with the token handed to the portal; anything else is ignored.
    """
    next_path = portal_next(next)
    if services.sso is not None:
        response = RedirectResponse(await services.sso.begin_login(), status_code=303)
        if next_path:
            # Read back by /auth/authorize; the provider's round trip cannot carry it.
            response.set_cookie(
                NEXT_COOKIE,
                next_path,
                max_age=NEXT_COOKIE_SECONDS,
                path="/auth",
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )
        return response
    return page("login.html", action=LOGIN_URL, username="", error=None, next=next_path)


@router.post(LOGIN_URL, response_class=HTMLResponse)
async def login(
    request: Request,
    services: ServicesDep,
    username: Annotated[str, Form(max_length=255)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str | None, Form(max_length=1024)] = None,
) -> HTMLResponse:
    """Check the form's credentials and show a fresh token for the CLI."""
    if services.sso is not None:
        raise ApiProblem(
            400, f"this server logs in through single sign-on: open {LOGIN_URL} in a browser"
        )
    if not await services.authenticator.verify_login(username, password):
        return page(
            "login.html",
            status=401,
            action=LOGIN_URL,
            username=username,
            error="Wrong user name or password.",
            next=portal_next(next),
        )
    ttl = timedelta(seconds=services.settings.auth.session_duration)
    token, record = await issue_token(services.db, username, ttl, description="web login")
    return _token_page(
        request,
        token,
        username,
        None,
        f"{record.expires_at:%Y-%m-%d %H:%M} UTC",
        portal_next(next),
    )


@router.get("/auth/authorize", response_class=HTMLResponse)
async def authorize(
    request: Request,
    services: ServicesDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> HTMLResponse:
    """Where the identity provider sends the browser back: finish the login, show the token."""
    sso = _sso(services)
    if error:
        reason = f"{error}: {error_description}" if error_description else error
        raise ApiProblem(400, f"the identity provider did not log you in ({reason[:300]})")
    if not code or not state:
        raise ApiProblem(400, "missing code or state: start the login at /auth/login")
    profile, token, record = await sso.finish_login(code, state)
    response = _token_page(
        request,
        token,
        profile.user_id,
        profile.display_name,
        f"{record.expires_at:%Y-%m-%d %H:%M} UTC",
        portal_next(request.cookies.get(NEXT_COOKIE)),
    )
    response.delete_cookie(NEXT_COOKIE, path="/auth")
    return response


@router.get("/auth/config", response_model=AuthInfo)
async def auth_config(services: ServicesDep) -> AuthInfo:
    """How to log in here: auth type, login page, and whether device logins are offered."""
    device = False
    if services.sso is not None:
        device = bool((await services.sso.oidc.endpoints()).device_authorization)
    return AuthInfo(
        auth_type=services.settings.auth.auth_type, login_url=LOGIN_URL, device_flow=device
    )


@router.post("/auth/device", response_model=DeviceAuthorization)
async def device_start(request: Request, services: ServicesDep) -> DeviceAuthorization:
    """Start a device login (for `waas login`): the user approves the code in a browser."""
    sso = _sso(services)
    if not (await sso.oidc.endpoints()).device_authorization:
        raise ApiProblem(
            400,
            "the identity provider offers no device login: open "
            f"{str(request.base_url).rstrip('/')}{LOGIN_URL} in a browser",
        )
    answer = await sso.oidc.start_device_authorization()
    try:
        return DeviceAuthorization(
            device_code=answer["device_code"],
            user_code=answer["user_code"],
            verification_uri=answer["verification_uri"],
            verification_uri_complete=answer.get("verification_uri_complete"),
            expires_in=int(answer.get("expires_in", 600)),
            interval=int(answer.get("interval", 5)),  # RFC 8628: 5 s when absent
        )
    except (KeyError, TypeError, ValueError):
        raise ApiProblem(503, "the identity provider's device login answer is incomplete") from None


@router.post(
    "/auth/device/token",
    response_model=TokenIssued,
    responses={202: {"model": DevicePending, "description": "Not approved yet: poll again."}},
)
async def device_token(body: DeviceTokenRequest, services: ServicesDep) -> Response | TokenIssued:
    """Poll a device login: 202 while pending, then one of this server's tokens."""
    sso = _sso(services)
    outcome = await sso.finish_device_login(body.device_code)
    if isinstance(outcome, dict):
        status = str(outcome["error"])
        interval = 5 + (5 if status == "slow_down" else 0)
        pending = DevicePending(status=status, interval=interval)
        return JSONResponse(pending.model_dump(), status_code=202)
    profile, token, record = outcome
    return TokenIssued(
        access_token=token,
        expires_at=record.expires_at,
        user_id=profile.user_id,
        display_name=profile.display_name,
    )


@router.delete("/auth/token", status_code=204, response_class=Response)
async def logout(services: ServicesDep, user: CurrentUser) -> Response:
    """Revoke the token this request was made with."""
    if user.token_id is None:
        raise ApiProblem(
            400, "this request was not made with one of this server's tokens: nothing to revoke"
        )
    async with services.db.write() as conn:
        await user_store.revoke_token(conn, user.token_id)
    return Response(status_code=204)
