"""Where a login sends the browser back to: a page of the web portal, never anywhere else."""

from __future__ import annotations

from fastapi import Request, Response

PORTAL_PREFIX = "/ui/"
# Single sign-on's round trip through the provider cannot carry the page: a cookie does.
NEXT_COOKIE = "hpcwaas_next"
NEXT_COOKIE_PATH = "/auth"
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


def remember_next(response: Response, request: Request, next_path: str) -> None:
    """Keep the portal page for /auth/authorize, across the provider's round trip."""
    response.set_cookie(
        NEXT_COOKIE,
        next_path,
        max_age=NEXT_COOKIE_SECONDS,
        path=NEXT_COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def recall_next(request: Request) -> str | None:
    """The portal page remembered by ``remember_next``, checked again."""
    return portal_next(request.cookies.get(NEXT_COOKIE))


def forget_next(response: Response) -> None:
    response.delete_cookie(NEXT_COOKIE, path=NEXT_COOKIE_PATH)
