"""The in-process tier: the whole app, its lifespan and engine, without a server process.

``InProcessServer`` runs ``create_app`` on the embedded default in an event loop of its own
(an anyio blocking portal, on a thread), and its clients reach the app through httpx's ASGI
transport: requests go straight to the app, in this process. Its ``token`` and ``client``
mirror ``tests.conftest.LiveServer``'s, so route tests run against either; use the live
server for what needs a process (signals, restarts, the HTTP server's own limits, streams).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from hpcwaas.auth.tokens import issue_token
from hpcwaas.server.app import create_app
from hpcwaas.settings import load_settings

BASE_URL = "http://127.0.0.1:9090"
T = TypeVar("T")


class _PortalTransport(httpx.BaseTransport):
    """A synchronous transport that hands each request to the app on the portal's loop."""

    def __init__(self, portal: BlockingPortal, app: Any) -> None:
        self._portal = portal
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()

        async def send() -> tuple[int, httpx.Headers, bytes]:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=content
            )
            response = await self._asgi.handle_async_request(forwarded)
            return response.status_code, response.headers, await response.aread()

        status, headers, body = self._portal.call(send)
        return httpx.Response(status, headers=headers, content=body, request=request)


class InProcessServer:
    """The embedded default in this process; ``stop`` ends its lifespan (engine included)."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.data_dir = data_dir
        self.settings = load_settings(None, data_dir=data_dir, **settings)
        self.url = BASE_URL
        self._app = create_app(self.settings)
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        # The lifespan opens the database, key store and catalog, and starts the engine.
        self._lifespan = self._portal.wrap_async_context_manager(
            self._app.router.lifespan_context(self._app)
        )
        self._lifespan.__enter__()
        self._stopped = False

    def token(self, user: str, ttl: str = "1h") -> str:
        """A bearer token for ``user``, as `hpcwaas-api tokens issue` gives one."""
        assert ttl.endswith("h"), "ttl in hours, e.g. 1h"
        lifetime = timedelta(hours=int(ttl[:-1]))
        db = self._app.state.runtime.db
        secret, _ = self._portal.call(issue_token, db, user, lifetime)
        return secret

    def on_loop(self, function: Callable[..., T], *args: Any) -> T:
        """Call ``function`` on the app's event loop thread (a profile hook, say)."""
        return self._portal.call(function, *args)

    @contextmanager
    def client(self, token: str | None = None) -> Iterator[httpx.Client]:
        """A client of the app, authenticated with ``token`` when one is given."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        transport = _PortalTransport(self._portal, self._app)
        with httpx.Client(transport=transport, base_url=self.url, headers=headers) as client:
            yield client

    def stop(self) -> None:
        """End the lifespan, as a server's shutdown does, then the loop (once)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._lifespan.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)
