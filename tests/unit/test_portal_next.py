"""Where a login may send the browser back to: portal paths only, never another site."""

from __future__ import annotations

import pytest

from hpcwaas.server.portal_return import portal_next


@pytest.mark.parametrize(
    "path", ["/ui/", "/ui/#/workflows", "/ui/#/workflows/demo%40local%40sweep", "/ui/index.html"]
)
def test_portal_paths_are_kept(path: str) -> None:
    assert portal_next(path) == path


@pytest.mark.parametrize(
    "path",
    [
        None,
        "",
        "https://evil.example/ui/",
        "//evil.example/ui/",
        "/\\\\evil.example/",
        "/ui\\\\evil",
        "/auth/token",
        "/ui",
        "/ui/../auth/login",
        "/ui//evil.example",
        "/ui/\nSet-Cookie: x",
        "/ui/\tx",
        "/ui/" + "a" * 2000,
    ],
)
def test_anything_else_is_ignored(path: str | None) -> None:
    assert portal_next(path) is None
