"""HTML pages (login form, token page), rendered with autoescaping."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape


@cache
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True),
    )


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a template; the security headers (no caching, CSP...) come from SecurityHeaders."""
    return HTMLResponse(_templates().get_template(name).render(**context), status_code=status)
