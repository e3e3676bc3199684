"""The web portal at /ui/, driven in Debian's headless Chromium like a scientist would use it.

Screenshots of each page go to $HPCWAAS_ARTIFACTS (default: test-artifacts/portal), each
page checked for unlabelled controls and poor contrast first. The pages are served with the
site's Content-Security-Policy; the test fails on any console error (CSP violations
included) and on any request that leaves the server's origin.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.conftest import LiveServer
from tests.portal_support import Watch, artifacts_dir, shot, with_csp

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

USER, PASSWORD = "ada", "analytical-engine"


@pytest.fixture
def artifacts() -> Path:
    return artifacts_dir()


@pytest.fixture
def portal_server(fresh_server: LiveServer) -> Iterator[LiveServer]:
    added = fresh_server.admin("users", "add", USER, "--password-stdin", input_text=PASSWORD)
    assert added.returncode == 0, added.stderr
    yield fresh_server.start()


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
    page.route("**/*", with_csp)

    # -- log in through the embedded default's password form, back to the portal
    page.goto(origin + "/ui/")
    login = page.get_by_role("link", name="Log in")
    shot(page, artifacts, "01-logged-out")
    login.click()
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", level=1, name="Workflows").wait_for()
    assert page.url.endswith("/ui/#/workflows")
    assert page.locator("#whoami").inner_text() == USER
    assert page.get_by_text("Fan out to two parallel branches").is_visible()
    shot(page, artifacts, "02-workflows")
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
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == public_key
    # the list is read again after the new key is shown
    page.locator(f"tr[data-key='{key_id}']").wait_for()
    assert [k["id"] for k in api.get("/ssh_keys").json()["ssh_keys"]] == [key_id]
    shot(page, artifacts, "03-ssh-keys")
    # a second key, an Ed25519 one, deleted after confirmation
    page.get_by_label("Key type").select_option("ed25519")
    page.get_by_role("button", name="Generate a key").click()
    page.locator("#new-public-key").filter(has_text="ssh-ed25519 ").wait_for()
    spare = page.locator("#new-key-id").inner_text()
    page.get_by_role("button", name=f"Delete key {spare}").click()
    page.get_by_role("dialog", name="Delete this key?").get_by_role(
        "button", name="Delete key"
    ).click()
    page.locator(f"tr[data-key='{spare}']").wait_for(state="detached")
    assert [k["id"] for k in api.get("/ssh_keys").json()["ssh_keys"]] == [key_id]

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
    shot(page, artifacts, "04-form-error-in-page")

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
    shot(page, artifacts, "05-form-error-from-server")
    page.unroute(schema_url)
    page.reload()

    # -- trigger it for real, and watch it run live
    page.locator("#input-n").fill("4")
    page.get_by_role("button", name="Run workflow").click()
    page.wait_for_url(re.compile(r".*/ui/#/executions/[0-9a-f-]{36}$"))
    execution_id = page.url.rsplit("/", 1)[1]
    # (that log entries arrive while an execution still runs is checked on the sleep below:
    # this one may be over before the page has opened its stream)
    page.locator(".log-entry").first.wait_for()
    shot(page, artifacts, "06-execution-logs")
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
    shot(page, artifacts, "07-execution-succeeded")

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
    # its log entries arrive while it is still running: they are streamed
    page.locator(".log-entry").get_by_text("sleeping for 600 seconds").wait_for()
    assert page.locator(".status-line .badge").text_content() == "RUNNING"
    page.get_by_role("button", name="Cancel execution").click()
    dialog = page.get_by_role("dialog", name="Cancel this execution?")
    assert dialog.is_visible()
    shot(page, artifacts, "08-cancel-confirmation")
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
    shot(page, artifacts, "09-execution-cancelled")

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
    shot(page, artifacts, "10-executions")

    # -- on a phone
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(f"{origin}/ui/#/executions/{execution_id}")
    page.wait_for_function(
        "() => document.querySelector('.status-line .badge')?.textContent === 'SUCCEEDED'"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, artifacts, "11-phone-execution")
    page.goto(f"{origin}/ui/#/workflows/demo%40local%40sweep")
    page.locator("#input-n").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, artifacts, "12-phone-form")
    page.set_viewport_size({"width": 1280, "height": 800})

    # -- log out: the token is revoked and the page offers to log in again
    page.get_by_role("button", name="Log out").click()
    page.get_by_text("You are logged out.").wait_for()
    assert page.evaluate("sessionStorage.getItem('hpcwaas.token')") is None
    assert api.get("/users/me").status_code == 401
    shot(page, artifacts, "13-logged-out")

    assert watch.errors == []
    assert watch.foreign_requests() == []
    api.close()
