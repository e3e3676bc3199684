"""`/auth/*`: logging in (form, or single sign-on), device logins, logging out."""

from __future__ import annotations

import logging
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
from hpcwaas.auth.sso import LoginFailed, SingleSignOn
from hpcwaas.auth.tokens import issue_token
from hpcwaas.server import csrf
from hpcwaas.server.auditing import Audit
from hpcwaas.server.deps import CurrentUser, RuntimeDep, request_address
from hpcwaas.server.openapi import problems
from hpcwaas.server.pages import page
from hpcwaas.server.portal_return import forget_next, portal_next, recall_next, remember_next
from hpcwaas.server.problems import ApiProblem
from hpcwaas.services.audit import AuditRecorder
from hpcwaas.services.runtime import Runtime
from hpcwaas.store import users as user_store
from hpcwaas.store.audit import UNKNOWN_ACTOR, AuditAction, Outcome
from hpcwaas.store.users import TokenRecord

router = APIRouter(tags=["auth"])
log = logging.getLogger(__name__)

LOGIN_URL = "/auth/login"
FORM_EXPIRED = "The form expired, please log in again."


def _sso(runtime: Runtime) -> SingleSignOn:
    if runtime.sso is None:
        raise ApiProblem(
            404,
            f"single sign-on is not configured on this server (auth_type "
            f"{runtime.settings.auth.auth_type}): log in at {LOGIN_URL}",
        )
    return runtime.sso


async def _logged_in(audit: AuditRecorder, method: str, record: TokenRecord) -> None:
    """Audit a login and the token it issued."""
    async with audit.db.write() as conn:
        await audit.record(
            record.user_id, AuditAction.LOGIN, record.id, details={"method": method}, conn=conn
        )
        await audit.record(
            record.user_id,
            AuditAction.TOKEN_ISSUE,
            record.id,
            details={
                "user": record.user_id,
                "expires_at": record.expires_at.isoformat(),
                "description": record.description,
            },
            conn=conn,
        )


async def _login_failed(audit: AuditRecorder, actor: str, method: str, reason: str) -> None:
    """Audit a refused login: who it claimed to be and why; never what was typed as password."""
    await audit.record(
        actor,
        AuditAction.LOGIN,
        None,
        outcome=Outcome.FAILURE,
        details={"method": method, "reason": reason},
    )


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


def _login_form(
    request: Request,
    *,
    status: int = 200,
    username: str = "",
    error: str | None = None,
    next_path: str | None = None,
) -> HTMLResponse:
    """The login form, with a fresh CSRF token in its hidden field and its cookie."""
    form_token = csrf.new_token()
    response = page(
        "login.html",
        status=status,
        action=LOGIN_URL,
        username=username,
        error=error,
        csrf_field=csrf.FIELD_NAME,
        csrf_token=form_token,
        next=next_path,
    )
    csrf.set_cookie(response, request, form_token)
    return response


@router.get(
    LOGIN_URL,
    response_model=None,
    response_class=HTMLResponse,
    responses={
        303: {"description": "Single sign-on: off to the identity provider."},
        **problems(503),
    },
)
async def login_start(request: Request, runtime: RuntimeDep, next: str | None = None) -> Response:
    """Single sign-on: off to the identity provider. Otherwise: the login form.

    ``next``, a path of the web portal (``/ui/...``), is where the browser goes once logged
    in, with the token handed to the portal; anything else is ignored.
    """
    next_path = portal_next(next)
    if runtime.sso is None:
        return _login_form(request, next_path=next_path)
    url, state = await runtime.sso.begin_login()
    response = RedirectResponse(url, status_code=303)
    csrf.bind_sso_state(response, request, state, runtime.settings.auth.login_timeout_seconds)
    if next_path:
        remember_next(response, request, next_path)
    return response


@router.post(
    LOGIN_URL,
    response_class=HTMLResponse,
    responses={
        401: {
            "description": "Wrong user name or password: the form again, with the error.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        403: {
            "description": "The form's CSRF token is missing or does not match its cookie: "
            "the form again, with a fresh token.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **problems(429, 503),
    },
)
async def login(
    request: Request,
    runtime: RuntimeDep,
    audit: Audit,
    username: Annotated[str, Form(min_length=1, max_length=255)],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str | None, Form(max_length=1024)] = None,
) -> HTMLResponse:
    """Check the form's CSRF token and credentials and show a fresh token for the CLI."""
    if runtime.sso is not None:
        raise ApiProblem(
            400, f"this server logs in through single sign-on: open {LOGIN_URL} in a browser"
        )
    refused = csrf.refusal(request, csrf_token)
    if refused is not None:
        # Checked before the password: a forged POST learns nothing and gets no token.
        log.warning("login form refused: %s", refused)
        return _login_form(request, status=403, error=FORM_EXPIRED)
    if not await runtime.authenticator.verify_login(username, password, request_address(request)):
        await _login_failed(audit, username, "form", "wrong user name or password")
        return _login_form(
            request,
            status=401,
            username=username,
            error="Wrong user name or password.",
            next_path=portal_next(next),
        )
    ttl = timedelta(seconds=runtime.settings.auth.session_duration)
    token, record = await issue_token(runtime.db, username, ttl, description="web login")
    await _logged_in(audit, "form", record)
    response = _token_page(
        request,
        token,
        username,
        None,
        f"{record.expires_at:%Y-%m-%d %H:%M} UTC",
        portal_next(next),
    )
    csrf.clear_cookie(response, request)
    return response


@router.get("/auth/authorize", response_class=HTMLResponse, responses=problems(404, 503))
async def authorize(
    request: Request,
    runtime: RuntimeDep,
    audit: Audit,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> HTMLResponse:
    """Where the identity provider sends the browser back: finish the login, show the token."""
    sso = _sso(runtime)
    if error:
        reason = f"{error}: {error_description}" if error_description else error
        await _login_failed(audit, UNKNOWN_ACTOR, "sso", f"identity provider: {reason}")
        raise ApiProblem(400, f"the identity provider did not log you in ({reason[:300]})")
    if not code or not state:
        raise ApiProblem(400, "missing code or state: start the login at /auth/login")
    refused = csrf.sso_state_refusal(request, state)
    if refused is not None:
        await _login_failed(audit, UNKNOWN_ACTOR, "sso", refused)
        raise ApiProblem(
            400,
            "this login was not started in this browser (or its cookie expired or is "
            "blocked): start again at /auth/login",
        )
    try:
        profile, token, record = await sso.finish_login(code, state)
    except LoginFailed as exc:
        await _login_failed(audit, UNKNOWN_ACTOR, "sso", str(exc))
        raise
    await _logged_in(audit, "sso", record)
    response = _token_page(
        request,
        token,
        profile.user_id,
        profile.display_name,
        f"{record.expires_at:%Y-%m-%d %H:%M} UTC",
        recall_next(request),
    )
    forget_next(response)
    csrf.clear_sso_state(response, request)
    return response


@router.get("/auth/config", response_model=AuthInfo)
async def auth_config(runtime: RuntimeDep) -> AuthInfo:
    """How to log in here: auth type, login page, and whether device logins are offered."""
    device = False
    if runtime.sso is not None:
        device = bool((await runtime.sso.oidc.endpoints()).device_authorization)
    return AuthInfo(
        auth_type=runtime.settings.auth.auth_type, login_url=LOGIN_URL, device_flow=device
    )


@router.post("/auth/device", response_model=DeviceAuthorization, responses=problems(400, 404, 503))
async def device_start(request: Request, runtime: RuntimeDep) -> DeviceAuthorization:
    """Start a device login (for `waas login`): the user approves the code in a browser."""
    sso = _sso(runtime)
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
    responses={
        202: {"model": DevicePending, "description": "Not approved yet: poll again."},
        **problems(404, 429, 503),
    },
)
async def device_token(
    request: Request, body: DeviceTokenRequest, runtime: RuntimeDep, audit: Audit
) -> Response | TokenIssued:
    """Poll a device login: 202 while pending, then one of this server's tokens."""
    sso = _sso(runtime)
    # A device code is a credential the provider checks: guesses count like unknown tokens.
    address = request_address(request)
    runtime.authenticator.guard.check_address(address)
    try:
        outcome = await sso.finish_device_login(body.device_code)
    except LoginFailed as exc:
        await _login_failed(audit, UNKNOWN_ACTOR, "device", str(exc))
        await runtime.authenticator.guard.count_failure(address)
        raise
    if isinstance(outcome, dict):
        status = str(outcome["error"])
        interval = 5 + (5 if status == "slow_down" else 0)
        pending = DevicePending(status=status, interval=interval)
        return JSONResponse(pending.model_dump(), status_code=202)
    profile, token, record = outcome
    await _logged_in(audit, "device", record)
    return TokenIssued(
        access_token=token,
        expires_at=record.expires_at,
        user_id=profile.user_id,
        display_name=profile.display_name,
    )


@router.delete("/auth/token", status_code=204, response_class=Response, responses=problems(400))
async def logout(runtime: RuntimeDep, user: CurrentUser, audit: Audit) -> Response:
    """Revoke the token this request was made with."""
    if user.token_id is None:
        raise ApiProblem(
            400, "this request was not made with one of this server's tokens: nothing to revoke"
        )
    async with runtime.db.write() as conn:
        await user_store.revoke_token(conn, user.token_id)
        await audit.record(user.user_id, AuditAction.LOGOUT, user.token_id, conn=conn)
    runtime.authenticator.forget_tokens()
    return Response(status_code=204)
