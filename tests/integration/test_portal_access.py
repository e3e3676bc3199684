"""The portal's way in and its cluster accounts, in Debian's headless Chromium.

Logging in by single sign-on back to the page one came from, an expired session, the
keyboard, and the cluster account fields of a workflow that runs on a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.conftest import LiveServer, free_port
from tests.environments_support import LOCAL_AND_PAPER_CLUSTER
from tests.integration.conftest import SsoSetup
from tests.portal_support import Watch, artifacts_dir, logged_in, shot, with_csp

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.fixture
def artifacts() -> Path:
    return artifacts_dir()


@pytest.fixture
def portal_server(fresh_server: LiveServer) -> Iterator[LiveServer]:
    added = fresh_server.admin("users", "add", "ada", "--password-stdin", input_text="a-password")
    assert added.returncode == 0, added.stderr
    yield fresh_server.start()


def test_keyboard_users_reach_the_login_and_skip_to_the_content(
    chromium: Page, portal_server: LiveServer
) -> None:
    page = chromium
    watch = Watch(page, portal_server.url)
    page.route("**/*", with_csp)
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
    live.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(LOCAL_AND_PAPER_CLUSTER)
    live.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
    live.start()
    try:
        token = live.token("grace")
        page = chromium
        watch = Watch(page, live.url)
        page.route("**/*", with_csp)
        with live.client(token) as api:
            key_id = api.post("/ssh_keys").json()["id"]
            registered = api.put(
                "/environments/cluster/identity", json={"login": "grace", "key_id": key_id}
            )
            assert registered.status_code == 200, registered.text
            # logged in before the portal first loads: no login screen drawn late over the page
            logged_in(page, live.url, token)
            page.goto(live.url + "/ui/#/keys")
            form = page.get_by_role("form", name="Cluster account on Test cluster")
            assert form.get_by_label("Cluster login").input_value() == "grace"
            assert form.get_by_label("SSH key").input_value() == key_id
            form.get_by_label("Cluster login").fill("ghopper")
            form.get_by_role("button", name="Save").click()
            form.get_by_text("Saved.").wait_for()
            identity = api.get("/environments/cluster").json()["identity"]
            assert identity == {"login": "ghopper", "key_id": key_id}
            shot(page, artifacts, "14-cluster-accounts")

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
            shot(page, artifacts, "15-cluster-form")
            assert api.get("/executions").json()["executions"] == []

            page.goto(live.url + "/ui/#/workflows/sim%40local%40run")
            # the new form (the cluster one had an n too): its workflow ID is on it
            page.get_by_text("sim@local@run", exact=True).wait_for()
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
    page.route("**/*", with_csp)
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
    shot(page, artifacts, "16-after-single-sign-on")


def test_an_expired_session_sends_the_user_to_log_in_again(
    chromium: Page, portal_server: LiveServer
) -> None:
    page = chromium
    watch = Watch(page, portal_server.url)
    page.route("**/*", with_csp)
    page.goto(portal_server.url + "/ui/")
    page.evaluate("sessionStorage.setItem('hpcwaas.token', 'revoked-or-expired')")
    page.goto(portal_server.url + "/ui/#/keys")
    page.get_by_text("your session has expired: log in again").wait_for()
    login = page.get_by_role("link", name="Log in")
    assert login.get_attribute("href") == "/auth/login?next=%2Fui%2F%23%2Fkeys"
    assert page.evaluate("sessionStorage.getItem('hpcwaas.token')") is None
    assert watch.foreign_requests() == []
