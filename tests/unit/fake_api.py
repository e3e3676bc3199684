"""A scripted fake of the REST API for CLI tests, plugged in as an httpx transport."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from hpcwaas.api.errors import envelope

Answer = Callable[[httpx.Request], httpx.Response]


def reply(status: int = 200, body: object = None, headers: dict[str, str] | None = None) -> Answer:
    """An answer that builds a fresh response each time."""
    return lambda request: httpx.Response(status, json=body, headers=headers)


class FakeApi:
    """Routes (method, path) to scripted answers, consumed in order; the last one repeats."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], list[Answer]] = {}

    def on(self, method: str, path: str, *answers: Answer) -> FakeApi:
        self.routes[(method, path)] = list(answers)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(404, json=envelope(404, f"no route {request.url.path}"))
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer(request)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)]
