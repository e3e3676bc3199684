"""The web portal at /ui/, driven in Debian's headless Chromium like a scientist would use it.

Screenshots of each page go to $HPCWAAS_ARTIFACTS (default: test-artifacts/portal).
The pages are served with the site's Content-Security-Policy; the test fails on any console
error (CSP violations included) and on any request that leaves the server's origin.
Waits are written as functions (``() => ...``): the CSP forbids the eval that Playwright
would use for a bare expression.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.conftest import LiveServer, free_port
from tests.integration.conftest import SsoSetup

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("HPCWAAS_ARTIFACTS", ROOT / "test-artifacts" / "portal"))
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
USER, PASSWORD = "ada", "analytical-engine"


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def portal_server(fresh_server: LiveServer) -> Iterator[LiveServer]:
    added = fresh_server.admin("users", "add", USER, "--password-stdin", input_text=PASSWORD)
    assert added.returncode == 0, added.stderr
    yield fresh_server.start()


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


def _with_csp(route: Route) -> None:
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


def _shot(page: Page, artifacts: Path, name: str) -> None:
    """Save a screenshot of the page, after checking its labels and contrast."""
    if not page.locator("dialog[open]").count():
        assert page.evaluate(ACCESSIBILITY_PROBLEMS) == [], name
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def _status(page: Page) -> str:
    return page.locator(".status-line .badge").inner_text()


def _nav(page: Page, section: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=section).click()


def _trigger_from_form(page: Page, workflow: str) -> str:
    _nav(page, "Workflows")
    page.get_by_role("link", name=workflow, exact=True).click()
    page.get_by_role("heading", level=1, name=workflow).wait_for()
    return page.url


def test_a_user_runs_follows_downloads_and_cancels_workflows_in_the_browser(
    chromium: Page, portal_server: LiveServer, artifacts: Path
) -> None:
    page = chromium
    origin = portal_server.url
    watch = Watch(page, origin)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    page.route("**/*", _with_csp)

    # -- log in through the embedded default's password form, back to the portal
    page.goto(origin + "/ui/")
    login = page.get_by_role("link", name="Log in")
    _shot(page, artifacts, "01-logged-out")
    login.click()
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", level=1, name="Workflows").wait_for()
    assert page.url.endswith("/ui/#/workflows")
    assert page.locator("#whoami").inner_text() == USER
    assert page.get_by_text("Fan out to two parallel branches").is_visible()
    _shot(page, artifacts, "02-workflows")
    token = page.evaluate("sessionStorage.getItem('hpcwaas.token')")
    api = httpx.Client(base_url=origin, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    # -- generate an SSH key: the public half once, a copy button, the authorized_keys line
    _nav(page, "SSH keys")
    page.get_by_role("button", name="Generate a key").click()
    public_key = page.locator("#new-public-key").inner_text()
    assert public_key.startswith("ssh-rsa AAAA")
    key_id = page.locator("#new-key-id").inner_text()
    assert page.locator("#authorized-keys-line").inner_text() == (
        f"echo '{public_key}' >> ~/.ssh/authorized_keys"
    )
    page.get_by_role("button", name="Copy public key").click()
    assert page.evaluate("navigator.clipboard.readText()") == public_key
    assert page.locator(f"tr[data-key='{key_id}']").is_visible()
    assert [k["id"] for k in api.get("/ssh_keys").json()["ssh_keys"]] == [key_id]
    _shot(page, artifacts, "03-ssh-keys")

    # -- the sweep form: defaults filled, an invalid value refused in the page...
    _trigger_from_form(page, "sweep")
    assert page.locator("#input-n").input_value() == "3"
    assert page.locator("#input-mode").locator("option:checked").inner_text() == "fast"
    assert "How far the right branch counts" in page.locator("#input-n-help").inner_text()
    posts_before = sum(1 for method, _ in watch.requests if method == "POST")
    page.locator("#input-n").fill("99")
    page.get_by_role("button", name="Run workflow").click()
    error = page.locator("#input-n-error")
    error.wait_for()
    assert error.inner_text() == "99 is above the maximum 8"
    assert page.locator("#input-n").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "input-n"
    assert sum(1 for method, _ in watch.requests if method == "POST") == posts_before
    _shot(page, artifacts, "04-form-error-in-page")

    # ...and, with the page's own check out of the way, the server's error by the field
    def without_maximum(route: Route) -> None:
        if route.request.method != "GET":
            route.fallback()
            return
        response = route.fetch()
        body = response.json()
        for spec in body["inputs"]:
            spec["maximum"] = None
        route.fulfill(response=response, body=json.dumps(body))

    assert watch.errors == []
    schema_url = re.compile(r".*/workflows/demo%40local%40sweep$")
    page.route(schema_url, without_maximum)
    page.reload()
    page.locator("#input-n").fill("99")
    page.get_by_role("button", name="Run workflow").click()
    page.locator("#input-n-error").wait_for()
    assert page.locator("#input-n-error").inner_text() == "input 'n': 99 is above the maximum 8"
    # Chromium logs the refused request itself; nothing else may be in the console.
    assert watch.errors == [
        "console: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    watch.errors.clear()
    _shot(page, artifacts, "05-form-error-from-server")
    page.unroute(schema_url)
    page.reload()

    # -- trigger it for real, and watch it run live
    page.locator("#input-n").fill("4")
    page.get_by_role("button", name="Run workflow").click()
    page.wait_for_url(re.compile(r".*/ui/#/executions/[0-9a-f-]{36}$"))
    execution_id = page.url.rsplit("/", 1)[1]
    # log entries arrive while the execution is still running: they are streamed
    page.wait_for_function(
        "() => document.querySelectorAll('.log-entry').length > 0 && "
        "document.querySelector('.status-line .badge').textContent === 'RUNNING'"
    )
    _shot(page, artifacts, "06-execution-running")
    page.wait_for_function(
        "() => document.querySelector('.status-line .badge').textContent === 'SUCCEEDED'",
        timeout=60_000,
    )
    assert page.locator(".log").get_by_text("report written to out/report.txt").is_visible()
    assert not page.get_by_role("button", name="Cancel execution").is_visible()
    assert "null" not in page.locator("main").inner_text()
    gather = page.locator("[data-step='gather']")
    assert gather.get_attribute("data-state") == "SUCCEEDED"
    assert "after left, right" in gather.inner_text()
    assert page.locator(".layer").count() == 3  # prepare | left, right | gather
    # one stream, no polling of the logs route
    assert sum(1 for _, url in watch.requests if url.endswith("/events?levels=15")) == 1
    assert not [url for _, url in watch.requests if "/logs" in url]
    # level filters: DEBUG entries are hidden until asked for
    assert page.locator(".log-entry.level-debug").count() == 0
    page.get_by_label("DEBUG").check()
    assert page.locator(".log-entry.level-debug").count() > 0
    page.get_by_label("INFO").uncheck()
    assert page.locator(".log-entry.level-info").count() == 0
    page.get_by_label("INFO").check()
    _shot(page, artifacts, "07-execution-succeeded")

    # -- download its output
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download report").click()
    download = download_info.value
    assert download.suggested_filename == "report.txt"
    saved = artifacts / "report.txt"
    download.save_as(str(saved))
    report = saved.read_text()
    assert report == api.get(f"/executions/{execution_id}").json()["outputs"]["report"]
    assert "mode fast" in report and report.rstrip().endswith("4")

    # -- a second execution, cancelled after confirmation
    _trigger_from_form(page, "sleep")
    page.get_by_role("button", name="Run workflow").click()
    page.wait_for_function(
        "() => document.querySelector('.status-line .badge')?.textContent === 'RUNNING'"
    )
    second_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("button", name="Cancel execution").click()
    dialog = page.get_by_role("dialog", name="Cancel this execution?")
    assert dialog.is_visible()
    _shot(page, artifacts, "08-cancel-confirmation")
    page.keyboard.press("Escape")  # changing one's mind keeps it running
    assert not dialog.is_visible()
    assert api.get(f"/executions/{second_id}").json()["status"] == "RUNNING"
    page.get_by_role("button", name="Cancel execution").click()
    dialog.get_by_role("button", name="Cancel execution").click()
    page.wait_for_function(
        "() => document.querySelector('.status-line .badge').textContent === 'CANCELLED'",
        timeout=30_000,
    )
    assert api.get(f"/executions/{second_id}").json()["status"] == "CANCELLED"
    _shot(page, artifacts, "09-execution-cancelled")

    # -- the list of executions, with filters
    _nav(page, "Executions")
    rows = page.locator("tbody tr")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    page.get_by_label("Status").select_option("CANCELLED")
    page.wait_for_function("() => document.querySelectorAll('tbody tr').length === 1")
    assert second_id[:8] in rows.first.inner_text()
    page.get_by_label("Status").select_option("")
    rows.nth(1).wait_for()
    _shot(page, artifacts, "10-executions")

    # -- on a phone
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(f"{origin}/ui/#/executions/{execution_id}")
    page.wait_for_function(
        "() => document.querySelector('.status-line .badge')?.textContent === 'SUCCEEDED'"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    _shot(page, artifacts, "11-phone-execution")
    page.goto(f"{origin}/ui/#/workflows/demo%40local%40sweep")
    page.locator("#input-n").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    _shot(page, artifacts, "12-phone-form")
    page.set_viewport_size({"width": 1280, "height": 800})

    # -- log out: the token is revoked and the page offers to log in again
    page.get_by_role("button", name="Log out").click()
    page.get_by_text("You are logged out.").wait_for()
    assert page.evaluate("sessionStorage.getItem('hpcwaas.token')") is None
    assert api.get("/users/me").status_code == 401
    _shot(page, artifacts, "13-logged-out")

    assert watch.errors == []
    assert watch.foreign_requests() == []
    api.close()


def test_keyboard_users_reach_the_login_and_skip_to_the_content(
    chromium: Page, portal_server: LiveServer
) -> None:
    page = chromium
    watch = Watch(page, portal_server.url)
    page.route("**/*", _with_csp)
    page.goto(portal_server.url + "/ui/")
    page.get_by_role("link", name="Log in").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    focused: list[Any] = []
    for _ in range(4):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.textContent"))
    assert "Log in" in focused
    assert watch.errors == []


CLUSTER_APPLICATION = """
application: sim
environments: [cluster, local]
expose: [run]
workflows:
  run:
    description: Simulate.
    inputs:
      n: {type: integer, default: 1}
    steps:
      go:
        kind: shell
        run: echo {{ inputs.n }}
"""


def test_a_cluster_workflows_form_offers_the_registered_account_and_keys(
    chromium: Page, tmp_path: Path, artifacts: Path
) -> None:
    # The cluster does not exist: the page only shows and registers the account.
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "sim.yaml").write_text(CLUSTER_APPLICATION)
    live = LiveServer(tmp_path / "data", free_port())
    live.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(
        {
            "local": {"kind": "local", "name": "Local host"},
            "cluster": {
                "kind": "slurm",
                "name": "Test cluster",
                "host": "127.0.0.1",
                "port": 2222,
                "host_keys": [
                    "[127.0.0.1]:2222 ssh-ed25519 "
                    "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
                ],
            },
        }
    )
    live.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
    live.start()
    try:
        token = live.token("grace")
        page = chromium
        watch = Watch(page, live.url)
        page.route("**/*", _with_csp)
        with live.client(token) as api:
            key_id = api.post("/ssh_keys").json()["id"]
            registered = api.put(
                "/environments/cluster/identity", json={"login": "grace", "key_id": key_id}
            )
            assert registered.status_code == 200, registered.text
            page.goto(live.url + "/ui/")
            page.evaluate(f"sessionStorage.setItem('hpcwaas.token', {json.dumps(token)})")
            page.goto(live.url + "/ui/#/keys")
            form = page.get_by_role("form", name="Cluster account on Test cluster")
            assert form.get_by_label("Cluster login").input_value() == "grace"
            assert form.get_by_label("SSH key").input_value() == key_id
            form.get_by_label("Cluster login").fill("ghopper")
            form.get_by_role("button", name="Save").click()
            form.get_by_text("Saved.").wait_for()
            identity = api.get("/environments/cluster").json()["identity"]
            assert identity == {"login": "ghopper", "key_id": key_id}
            _shot(page, artifacts, "14-cluster-accounts")

            page.goto(live.url + "/ui/#/workflows/sim%40cluster%40run")
            account = page.get_by_role("group", name="Cluster account on Test cluster")
            assert account.get_by_label("Cluster login (user_id)").get_attribute("placeholder") == (
                "ghopper"
            )
            options = account.get_by_label("SSH key (vault_id)").locator("option")
            assert options.first.inner_text() == f"Registered default ({key_id})"
            assert key_id in options.nth(1).inner_text()
            account.get_by_label("Cluster login (user_id)").fill("Not A Login")
            page.get_by_role("button", name="Run workflow").click()
            # the server's refusal is shown by the field it concerns
            error = page.locator("#input-user_id-error")
            error.wait_for()
            assert "'Not A Login' is not a valid cluster login" in error.inner_text()
            _shot(page, artifacts, "15-cluster-form")
            assert api.get("/executions").json()["executions"] == []

            page.goto(live.url + "/ui/#/workflows/sim%40local%40run")
            page.locator("#input-n").wait_for()
            assert page.get_by_role("group", name="Cluster account on Local host").count() == 0
            assert page.locator("#input-user_id").count() == 0
        assert [e for e in watch.errors if "status of 400" not in e] == []
        assert watch.foreign_requests() == []
    finally:
        live.stop()


def test_single_sign_on_brings_the_user_back_to_the_portal_page_they_came_from(
    sso: SsoSetup, chromium: Page, artifacts: Path
) -> None:
    server = sso.start()
    page = chromium
    page.route("**/*", _with_csp)
    page.goto(server.url + "/ui/#/executions")
    page.get_by_role("link", name="Log in with single sign-on").click()
    # the identity provider's own pages
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", "any-password")
    page.click("button[type=submit]")
    page.click("button[autofocus], button[type=submit]")
    page.get_by_role("heading", level=1, name="Executions").wait_for()
    assert page.url == server.url + "/ui/#/executions"
    assert page.locator("#whoami").inner_text() == "Alice Liddell"
    _shot(page, artifacts, "16-after-single-sign-on")


def test_an_expired_session_sends_the_user_to_log_in_again(
    chromium: Page, portal_server: LiveServer
) -> None:
    page = chromium
    watch = Watch(page, portal_server.url)
    page.route("**/*", _with_csp)
    page.goto(portal_server.url + "/ui/")
    page.evaluate("sessionStorage.setItem('hpcwaas.token', 'revoked-or-expired')")
    page.goto(portal_server.url + "/ui/#/keys")
    page.get_by_text("your session has expired: log in again").wait_for()
    login = page.get_by_role("link", name="Log in")
    assert login.get_attribute("href") == "/auth/login?next=%2Fui%2F%23%2Fkeys"
    assert page.evaluate("sessionStorage.getItem('hpcwaas.token')") is None
    assert watch.foreign_requests() == []
