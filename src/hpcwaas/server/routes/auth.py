"""`/auth/login`: the embedded default's login form, which ends on the token page."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from hpcwaas.auth.tokens import issue_token
from hpcwaas.server.deps import ServicesDep
from hpcwaas.server.pages import page
from hpcwaas.server.problems import ApiProblem

router = APIRouter(tags=["auth"])


@router.get("/auth/login", response_class=HTMLResponse)
async def login_form(services: ServicesDep) -> HTMLResponse:
    """The login form (local and basic accounts)."""
    return page("login.html", action="/auth/login", username="", error=None)


@router.post("/auth/login", response_class=HTMLResponse)
async def login(
    request: Request,
    services: ServicesDep,
    username: Annotated[str, Form(max_length=255)],
    password: Annotated[str, Form(max_length=1024)],
) -> HTMLResponse:
    """Check the credentials and show a fresh token for the CLI."""
    if not await services.authenticator.verify_login(username, password):
        return page(
            "login.html",
            status=401,
            action="/auth/login",
            username=username,
            error="Wrong user name or password.",
        )
    ttl = timedelta(seconds=services.settings.auth.session_duration)
    token, record = await issue_token(services.db, username, ttl, description="web login")
    return page(
        "token.html",
        display_name=username,
        user_id=username,
        token=token,
        expires_at=record.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        api_url=str(request.base_url).rstrip("/"),
    )


@router.get("/auth/authorize")
async def authorize() -> None:
    """The SSO callback; only meaningful with auth_type sso."""
    raise ApiProblem(404, "single sign-on is not configured on this server (auth.auth_type)")
