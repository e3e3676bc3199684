"""The server's own pages in a real headless Chromium, under the content security policy.

The login form and the token page must look as designed (their stylesheet loads), the copy
button must work, and the browser must report no violation of the policy; a forged
cross-site POST of the form must be refused.
"""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.conftest import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

PASSWORD = "s3cret-pass"

# Runs before any page script, outside the page's policy: records what the policy blocks.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def account(server: LiveServer) -> str:
    name = f"browser-{uuid.uuid4().hex[:8]}"
    added = server.admin("users", "add", name, "--password-stdin", input_text=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    return name


@pytest.fixture
def page(chromium: Page) -> Iterator[tuple[Page, list[str]]]:
    """The browser page, recording policy violations; yields it with its console errors."""
    console: list[str] = []
    chromium.on(
        "console", lambda message: console.append(message.text) if message.type == "error" else None
    )
    chromium.add_init_script(RECORD_VIOLATIONS)
    yield chromium, console


def _violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__violations")
    return found


def _style(page: Page, selector: str, prop: str) -> str:
    value: str = page.eval_on_selector(
        selector, f"(el) => getComputedStyle(el).getPropertyValue('{prop}')"
    )
    return value


def test_login_and_token_pages_render_styled_copy_works_and_nothing_is_blocked(
    server: LiveServer, account: str, page: tuple[Page, list[str]]
) -> None:
    browser, console = page
    browser.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)

    response = browser.goto(server.url + "/auth/login")
    assert response is not None and response.status == 200
    # pages.css applies: 44rem max width, the error colour and label layout come from it.
    assert _style(browser, "body", "max-width") == "704px"
    assert _style(browser, "label", "display") == "block"
    assert _violations(browser) == []

    browser.fill("#username", account)
    browser.fill("#password", PASSWORD)
    browser.click("button[type=submit]")
    browser.wait_for_selector("#token")
    assert browser.text_content("h1") == "Log in successful"
    assert _style(browser, "#token", "background-color") == "rgb(242, 244, 247)"
    token = (browser.text_content("#token") or "").strip()
    assert token

    browser.click("#copy")
    browser.wait_for_function("() => document.getElementById('copy').textContent === 'Copied'")
    assert browser.evaluate("navigator.clipboard.readText()") == token
    with server.client(token) as client:
        assert client.get("/workflows").status_code == 200

    assert _violations(browser) == []
    assert not [m for m in console if "Content Security Policy" in m], console

    # the page leads to the portal, logged in with this token
    browser.click("#portal-link")
    browser.wait_for_selector("#whoami")
    assert browser.text_content("#whoami") == account
    assert browser.text_content("main h1") == "Workflows"


def test_the_policy_blocks_an_injected_inline_script(
    server: LiveServer, page: tuple[Page, list[str]]
) -> None:
    browser, console = page
    browser.goto(server.url + "/auth/login")
    browser.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__injected = true";
          document.body.appendChild(script);
        }"""
    )
    browser.wait_for_function("() => window.__violations.length > 0")
    assert browser.evaluate("window.__injected === undefined")
    assert any(v.startswith("script-src") for v in _violations(browser))
    assert any("Content Security Policy" in m for m in console)


@pytest.fixture
def attacker_site(server: LiveServer, account: str) -> Iterator[str]:
    """Another site (localhost, not 127.0.0.1) whose page auto-submits the server's login form."""
    form = f"""<!doctype html><html><body>
<form id="f" method="post" action="{server.url}/auth/login">
<input name="username" value="{account}"><input name="password" value="{PASSWORD}">
</form><script>document.getElementById("f").submit();</script></body></html>"""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = form.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{site.server_address[1]}/"
    site.shutdown()
    site.server_close()


def test_a_cross_site_form_post_in_the_browser_is_refused(
    server: LiveServer, account: str, attacker_site: str, page: tuple[Page, list[str]]
) -> None:
    browser, _ = page
    # The user has the genuine form open (and so its cookie) when the other site strikes.
    browser.goto(server.url + "/auth/login")
    with browser.expect_navigation(url=server.url + "/auth/login") as navigation:
        browser.goto(attacker_site)
    response = navigation.value
    assert response is not None and response.status == 403
    assert "The form expired, please log in again." in (browser.text_content("[role=alert]") or "")
    assert browser.query_selector("#token") is None
    listing = server.admin("tokens", "list", "--user", account).stdout.splitlines()
    assert listing[1:] == []
    # The refused page is a working form: the user can log in from it.
    browser.fill("#username", account)
    browser.fill("#password", PASSWORD)
    browser.click("button[type=submit]")
    browser.wait_for_selector("#token")
    token = (browser.text_content("#token") or "").strip()
    assert httpx.get(
        server.url + "/workflows", headers={"Authorization": f"Bearer {token}"}
    ).is_success
