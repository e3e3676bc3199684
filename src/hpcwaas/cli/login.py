"""`waas login`, `waas logout`, `waas whoami`: get, drop and show your access token.

The token is a secret: it goes to the config file and to the server, never to
the output.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from hpcwaas.cli.config import ENV_VARS, load_config_file, update_config_file
from hpcwaas.cli.parsing import WaasParser

if TYPE_CHECKING:
    from hpcwaas.api.models import AuthInfo, TokenIssued, UserPublic
    from hpcwaas.cli.context import Context
    from hpcwaas.client import Client
    from hpcwaas.client.errors import ApiError

LOGIN_DESCRIPTION = """\
Log in and save an access token in the config file.

When the server offers device login, `waas login` prints a URL and a code:
open the URL in a browser (on any device), log in and confirm the code; the
token then arrives by itself. Otherwise it prints the login page's URL: log in
there and paste the token the page shows (it is not echoed).

The token is saved as access_token in the config file (--config, default
~/.waas), which is created readable by you only; other settings in it are
kept. An --api_url (or HW_API_URL) given to login is saved too, so later
commands need neither flag. The token itself is never printed.

examples:
  waas --api_url https://waas.example.org login
  waas login --no-browser                  (on a machine without a browser)
  echo "$TOKEN" | waas login --token-stdin (in scripts)"""

# RFC 8628: after `slow_down`, wait this many seconds longer between polls.
SLOW_DOWN_STEP = 5
TOKEN_ENV = ENV_VARS["access_token"]
_SUPERSEDING_ENV = (TOKEN_ENV, ENV_VARS["user"])


class LoginFailed(Exception):
    """Why no token was saved; printed as one `Error:` line."""


def fill(command: WaasParser) -> None:
    """Add the arguments of `login`, `logout` or `whoami`, and the function running it."""
    if command.command_name == "logout":
        command.set_defaults(func=run_logout)
        return
    if command.command_name == "whoami":
        command.set_defaults(func=run_whoami)
        return
    command.description = LOGIN_DESCRIPTION
    command.add_argument(
        "--no-browser", action="store_true", help="do not open a browser, only print the URL"
    )
    command.add_argument(
        "--token-stdin",
        action="store_true",
        help="read the token from standard input instead of prompting (for scripts)",
    )
    # `waas --config new.yaml login` creates the file.
    command.set_defaults(func=run_login, config_may_be_missing=True)


def run_login(ctx: Context) -> int:
    """`login [--no-browser] [--token-stdin]`: get a token, check it, save it."""
    try:
        if ctx.args.token_stdin:
            token = _clean_token(sys.stdin.read())
            details = _checked(ctx, token)
        else:
            info = _auth_info(ctx.new_client())
            if info is not None and info.device_flow:
                issued = _device_login(ctx, ctx.new_client())
                token = issued.access_token
                details = issued.model_dump(mode="json", exclude={"access_token"})
            else:
                token = _pasted_token(ctx, info)
                details = _checked(ctx, token)
    except LoginFailed as exc:
        ctx.out.note(f"Error: {exc}")
        return 1
    path = _save(ctx, token)
    if ctx.out.json:
        ctx.out.document({**details, "config_file": path})
    else:
        name = details.get("display_name") or details["user_id"]
        ctx.out.line(f"Logged in as {name} ({details['user_id']}); token saved to {path}")
    return 0


def _auth_info(client: Client) -> AuthInfo | None:
    """How this server logs users in; None for a server without `/auth/config`."""
    from hpcwaas.client.errors import NotFound

    try:
        return client.auth_info()
    except NotFound:
        return None


def _device_login(ctx: Context, client: Client) -> TokenIssued:
    """Start a device login, show its code, and poll until it is confirmed, denied or expired."""
    from hpcwaas.api.models import TokenIssued
    from hpcwaas.client.errors import BadRequest, TooManyRequests

    try:
        auth = client.start_device_login()
    except BadRequest as exc:
        raise LoginFailed(f"the server cannot start a device login: {_details(exc)}") from None
    url = auth.verification_uri_complete or auth.verification_uri
    ctx.out.line(f"Open {url} and confirm the code {auth.user_code}")
    _open_browser(ctx, url)
    ctx.out.note(f"Waiting for the confirmation (the code expires in {_span(auth.expires_in)})...")
    interval = max(1, auth.interval)
    started = time.monotonic()
    waited = 0.0
    while True:
        # Sleeps may be shorter than asked (tests) or requests slow: count whichever is more.
        remaining = auth.expires_in - max(waited, time.monotonic() - started)
        if remaining <= 0:
            raise LoginFailed(
                f"the code {auth.user_code} expired after {_span(auth.expires_in)} without "
                'being confirmed; run "waas login" again'
            )
        pause = min(interval, remaining)
        time.sleep(pause)
        waited += pause
        try:
            answer = client.poll_device_login(auth.device_code)
        except BadRequest as exc:  # denied, or expired on the server's clock
            raise LoginFailed(f"login failed: {_details(exc)}") from None
        except TooManyRequests:
            interval += SLOW_DOWN_STEP
            continue
        if isinstance(answer, TokenIssued):
            return answer
        if answer.status == "slow_down":
            interval = max(interval + SLOW_DOWN_STEP, answer.interval)
        else:
            interval = max(interval, answer.interval)


def _pasted_token(ctx: Context, info: AuthInfo | None) -> str:
    """Send the user to the login page and read the token it shows, without echo."""
    login_url = info.login_url if info is not None else "/auth/login"
    if "://" not in login_url:
        login_url = ctx.settings.api_url.rstrip("/") + "/" + login_url.lstrip("/")
    ctx.out.line(f"Open {login_url} in a browser, log in, and paste the token shown")
    _open_browser(ctx, login_url)
    try:
        return _clean_token(ctx.prompt_secret("Token: "))
    except EOFError:
        ctx.out.note("")  # end the prompt's line
        raise LoginFailed("no token was given; nothing was saved") from None


def _clean_token(text: str) -> str:
    token = text.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise LoginFailed("no token was given; nothing was saved")
    if any(c.isspace() for c in token):
        raise LoginFailed("that is not a token (it contains spaces); nothing was saved")
    return token


def _checked(ctx: Context, token: str) -> dict[str, Any]:
    """Who the token belongs to, as asked of `/users/me`; LoginFailed if the server refuses it."""
    from hpcwaas.client.errors import Unauthorized

    try:
        user = ctx.new_client(token=token).whoami()
    except Unauthorized as exc:
        raise LoginFailed(
            f"the server refused this token ({_details(exc)}); nothing was saved"
        ) from None
    return user.model_dump(mode="json")


def _open_browser(ctx: Context, url: str) -> None:
    """Open `url` when a person at a graphical session can see it; never a text-mode browser."""
    if ctx.args.no_browser or not _is_terminal(sys.stdout):
        return
    graphical = sys.platform in ("darwin", "win32") or any(
        os.environ.get(var) for var in ("DISPLAY", "WAYLAND_DISPLAY")
    )
    if not graphical:  # over ssh, webbrowser would start lynx or w3m in this terminal
        return
    import webbrowser

    try:
        webbrowser.open(url)
    except (webbrowser.Error, OSError):
        pass  # the URL is printed: the user can open it


def _save(ctx: Context, token: str) -> str:
    """Write the token (and a flag- or env-given API URL) to the config file; return its path."""
    updates: dict[str, str | None] = {"access_token": token}
    if getattr(ctx.args, "api_url", None) or ctx.environ.get(ENV_VARS["api_url"]):
        updates["api_url"] = ctx.settings.api_url
    saved = update_config_file(getattr(ctx.args, "config", None), updates)
    if saved.loose_mode is not None:
        ctx.out.note(
            f"Note: {saved.path} could be read by other users (mode {saved.loose_mode:04o}); "
            "its mode is now 0600"
        )
    for var in _SUPERSEDING_ENV:
        if ctx.environ.get(var):
            ctx.out.note(
                f"Note: {var} is set and takes precedence over the saved token; unset it to use "
                "the saved one"
            )
    return saved.path


def run_logout(ctx: Context) -> int:
    """`logout`: revoke the token on the server, then remove it from the config file."""
    from hpcwaas.client.errors import BadRequest, NotFound, Unauthorized

    config = getattr(ctx.args, "config", None)
    token = ctx.settings.access_token
    if token is None:  # a user given by env or flag may hide the file's token
        saved_token = load_config_file(config).get("access_token")
        token = str(saved_token) if saved_token else None
    path = ctx.config_file
    if token is None:
        ctx.out.line("Not logged in: there is no access token to revoke")
        if ctx.out.json:
            ctx.out.document(
                {"revoked": False, "already_expired": False, "removed": False, "config_file": path}
            )
        return 0
    outcome = "revoked"
    try:
        ctx.new_client(token=token).logout()
    except Unauthorized:
        outcome = "already expired or revoked"
    except (BadRequest, NotFound) as exc:  # not one of the server's tokens, or an older server
        outcome = f"not revoked by the server ({_details(exc)}); it stays valid until it expires"
    removed = update_config_file(config, {"access_token": None}).written
    if outcome == "revoked":
        text = f"token revoked and removed from {path}" if removed else "token revoked"
    else:
        text = f"the token was {outcome}" + (f"; removed it from {path}" if removed else "")
    if not removed:
        text += f"; {path} held no token (it came from -t or {TOKEN_ENV})"
    ctx.out.line(f"Logged out: {text}")
    if ctx.out.json:
        ctx.out.document(
            {
                "revoked": outcome == "revoked",
                "already_expired": outcome.startswith("already"),
                "removed": removed,
                "config_file": path,
            }
        )
    return 0


def run_whoami(ctx: Context) -> int:
    """`whoami`: the user your credentials belong to."""
    from hpcwaas.cli.output import rfc3339

    user: UserPublic = ctx.client().whoami()
    if ctx.out.json:
        # What the server sent: fields an older server lacks are not invented.
        ctx.out.document(user.model_dump(mode="json", exclude_unset=True))
        return 0
    ctx.out.line(f"User ID: {user.user_id}")
    if user.display_name:
        ctx.out.line(f"Name: {user.display_name}")
    if user.email:
        ctx.out.line(f"Email: {user.email}")
    ctx.out.line(f"Groups: {', '.join(user.groups) if user.groups else '(none)'}")
    if user.token_expires_at is not None:
        ctx.out.line(f"Token expires: {rfc3339(user.token_expires_at)}")
    if user.operator:
        ctx.out.line("Operator: yes")
    return 0


def _details(exc: ApiError) -> str:
    return "; ".join(item.detail or item.title for item in exc.errors)


def _span(seconds: float) -> str:
    if seconds >= 120:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds)} seconds"


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
