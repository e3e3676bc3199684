"""The user guide's first session, walked in Chromium: each step does what the guide says,
and its picture (docs/images/first-session-*.png) is taken again, so the guide shows the
portal as it is today."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from tests.conftest import LiveServer
from tests.portal_support import GUIDE_IMAGES, Watch, guide_shot, with_csp

if TYPE_CHECKING:
    from playwright.sync_api import Page

USER, PASSWORD = "ada", "analytical-engine"
PICTURES = [
    "first-session-1-login",
    "first-session-2-workflows",
    "first-session-3-form",
    "first-session-4-running",
    "first-session-5-finished",
    "first-session-6-executions",
    "first-session-7-phone",
]


@pytest.fixture
def guide_server(fresh_server: LiveServer) -> Iterator[LiveServer]:
    added = fresh_server.admin("users", "add", USER, "--password-stdin", input_text=PASSWORD)
    assert added.returncode == 0, added.stderr
    yield fresh_server.start()


def test_the_first_session_of_the_user_guide_works_and_its_pictures_are_current(
    chromium: Page, guide_server: LiveServer
) -> None:
    page = chromium
    origin = guide_server.url
    watch = Watch(page, origin)
    page.route("**/*", with_csp)
    page.set_viewport_size({"width": 1100, "height": 760})
    taken = []

    # 1. log in
    page.goto(origin + "/ui/")
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    taken.append(guide_shot(page, PICTURES[0]))
    page.get_by_role("button", name="Log in").click()

    # 2. the workflows published for you
    page.get_by_role("heading", level=1, name="Workflows").wait_for()
    assert page.get_by_role("link", name="sweep", exact=True).is_visible()
    taken.append(guide_shot(page, PICTURES[1]))

    # 3. a workflow's form, defaults filled in
    page.get_by_role("link", name="sweep", exact=True).click()
    page.locator("#input-n").fill("6")
    taken.append(guide_shot(page, PICTURES[2]))
    page.get_by_role("button", name="Run workflow").click()

    # 4. followed live: graph, timeline, logs
    page.wait_for_url(re.compile(r".*/ui/#/executions/[0-9a-f-]{36}$"))
    page.locator("svg.dag-graph").wait_for()
    page.locator("#steps-title").evaluate("(heading) => heading.scrollIntoView()")
    taken.append(guide_shot(page, PICTURES[3]))

    # 5. finished: its outputs, and Run again
    page.wait_for_function(
        "() => document.querySelector('.status-line .badge').textContent === 'SUCCEEDED'",
        timeout=60_000,
    )
    page.locator(".outputs a").first.wait_for()
    page.locator("#timeline-title").evaluate("(heading) => heading.scrollIntoView()")
    assert page.get_by_role("link", name="Run again").is_visible()
    taken.append(guide_shot(page, PICTURES[4]))

    # 6. the list of executions
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Executions").click()
    page.locator("tbody tr").first.wait_for()
    taken.append(guide_shot(page, PICTURES[5]))

    # 7. on a phone
    page.set_viewport_size({"width": 375, "height": 760})
    page.reload()
    page.locator("tbody tr").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    taken.append(guide_shot(page, PICTURES[6]))

    assert [path.name for path in taken] == [f"{name}.png" for name in PICTURES]
    guide = (GUIDE_IMAGES.parent / "user-guide.md").read_text()
    assert [name for name in PICTURES if f"images/{name}.png" not in guide] == []
    assert watch.errors == []
    assert watch.foreign_requests() == []
