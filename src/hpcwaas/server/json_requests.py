"""Requests that change something: their bodies read as JSON, cross-site ones refused.

The original HPCWaaS server read every request body as JSON whatever its Content-Type,
and its `waas` client sends none; scripts post with `curl -d`, whose type is a form's. So
the JSON API here reads the body of every POST, PUT, PATCH and DELETE as JSON, whatever
it is labelled (docs/compatibility.md, "Request bodies").

That alone would let another site's page make a browser send such a request with a
cached Basic login and no preflight (a form or a text body is a "simple" request). So a
request that shows a browser context from elsewhere is refused with 403 before anything
reads it: browsers send ``Origin`` on every cross-origin POST and ``Sec-Fetch-Site`` on
every request, while the original client, curl and scripts send neither
(docs/security.md, "Cross-site requests").

Routes that read an HTML form (``form_paths``) keep their body's type and make their own
check (server/csrf.py), which also asks for the form's token.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from starlette.datastructures import URL, Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from hpcwaas.server.csrf import foreign_context
from hpcwaas.server.problems import problem_response

log = logging.getLogger(__name__)

# Methods a page of another site cannot use to change anything here.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_TYPE = (b"content-type", b"application/json")


class JsonRequests:
    """ASGI middleware: cross-site changes refused, the others' bodies labelled JSON."""

    def __init__(self, app: ASGIApp, form_paths: Collection[str]) -> None:
        self.app = app
        self.form_paths = frozenset(form_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or scope["path"] in self.form_paths
        ):
            await self.app(scope, receive, send)
            return
        foreign = foreign_context(Headers(scope=scope), URL(scope=scope), null_origin=False)
        if foreign is not None:
            log.warning("cross-site %s %s refused: %s", scope["method"], scope["path"], foreign)
            detail = (
                f"a page of another site may not send this request ({foreign}): the API "
                "takes changes from this server's own pages and from programs, which send "
                "no Origin or Sec-Fetch-Site header"
            )
            await problem_response(403, detail)(scope, receive, send)
            return
        headers = [item for item in scope["headers"] if item[0] != b"content-type"]
        headers.append(JSON_TYPE)
        # In place, not a copy: the outer middlewares read what the router adds to the
        # scope (the route, for the metrics' labels).
        scope["headers"] = headers
        await self.app(scope, receive, send)
