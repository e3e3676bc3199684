"""Helpers of the portal's browser tests: the site's CSP, what a page did, screenshots.

``with_csp`` serves the portal's documents with the site's Content-Security-Policy, so a
violation shows in the console; ``Watch`` records console errors and every request;
``shot`` checks a page's labels and contrast (WCAG AA), then saves its screenshot under
$HPCWAAS_ARTIFACTS (default: test-artifacts/portal); ``guide_shot`` does the same for the
user guide's pictures, in docs/images/, so that they show the portal as it is.
Waits in the page are written as functions (``() => ...``): the CSP forbids the eval that
Playwright would use for a bare expression.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

ROOT = Path(__file__).resolve().parents[1]
# The user guide's pictures: taken by tests/integration/test_user_guide_screenshots.py.
GUIDE_IMAGES = ROOT / "docs" / "images"
ARTIFACTS = Path(os.environ.get("HPCWAAS_ARTIFACTS", ROOT / "test-artifacts" / "portal"))
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def artifacts_dir() -> Path:
    """Where screenshots go, created if needed."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class Watch:
    """What the page did: console errors, uncaught exceptions, every request's URL."""

    def __init__(self, page: Page, origin: str) -> None:
        self.origin = origin
        self.errors: list[str] = []
        self.requests: list[tuple[str, str]] = []
        page.on(
            "console",
            lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("request", lambda req: self.requests.append((req.method, req.url)))

    def foreign_requests(self) -> list[str]:
        return [
            url
            for _, url in self.requests
            if not (url.startswith(self.origin + "/") or url.startswith(f"blob:{self.origin}/"))
        ]


def with_csp(route: Route) -> None:
    """Serve the portal's documents with the site's CSP, so a violation shows in the console."""
    if route.request.resource_type != "document" or "/ui/" not in route.request.url:
        route.fallback()
        return
    response = route.fetch()
    route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})


# Run in the page (as a function: the CSP forbids eval). Lists form controls without a label
# and text whose contrast with its background is below WCAG AA (4.5:1; 3:1 for large text).
ACCESSIBILITY_PROBLEMS = """() => {
  const problems = [];
  for (const control of document.querySelectorAll("input, select, textarea")) {
    if (control.type === "hidden" || control.closest("[hidden]")) continue;
    if (!control.labels.length && !control.getAttribute("aria-label")) {
      problems.push(`no label: ${control.outerHTML.slice(0, 80)}`);
    }
  }
  const rgba = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const [R, G, B] = [r, g, b].map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  const background = (node) => {
    for (let n = node; n; n = n.parentElement) {
      const value = rgba(getComputedStyle(n).backgroundColor);
      if (value.length === 3 || (value.length === 4 && value[3] > 0)) return value.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const checked = new Set();
  while (walker.nextNode()) {
    const node = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || checked.has(node)) continue;
    checked.add(node);
    if (!node.getClientRects().length || node.closest("[hidden], .visually-hidden, :disabled")) {
      continue;
    }
    const style = getComputedStyle(node);
    const [fg, bg] = [luminance(rgba(style.color)), luminance(background(node))];
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`contrast ${ratio.toFixed(2)}: ${node.textContent.trim().slice(0, 40)}`);
    }
  }
  return problems;
}"""


def shot(page: Page, artifacts: Path, name: str) -> None:
    """Save a screenshot of the page, after checking its labels and contrast."""
    if not page.locator("dialog[open]").count():
        assert page.evaluate(ACCESSIBILITY_PROBLEMS) == [], name
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def logged_in(page: Page, origin: str, token: str) -> Page:
    """The page with ``token`` in the portal's session storage, as after logging in."""
    page.add_init_script(
        f"if (location.origin === {origin!r}) sessionStorage.setItem('hpcwaas.token', {token!r});"
    )
    return page


def guide_shot(page: Page, name: str) -> Path:
    """Save the visible part of the page as docs/images/<name>.png, after the same checks."""
    if not page.locator("dialog[open]").count():
        assert page.evaluate(ACCESSIBILITY_PROBLEMS) == [], name
    GUIDE_IMAGES.mkdir(parents=True, exist_ok=True)
    path = GUIDE_IMAGES / f"{name}.png"
    page.screenshot(path=str(path))
    return path
