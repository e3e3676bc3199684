"""Refuse request bodies over the configured size with 413, before reading them whole."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpcwaas.server.problems import problem_response


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = transfer_encoding = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                transfer_encoding = value
        if declared is None and transfer_encoding is None:
            # No body can follow (HTTP/1.1 framing): nothing to count.
            await self.app(scope, receive, send)
            return
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # An HTTPException passes through the framework's body parsing untouched.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self) -> str:
        return (
            f"request body is larger than the limit of {self.max_bytes} bytes "
            "(limits.max_body_bytes)"
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(413, self._detail())(scope, receive, send)
