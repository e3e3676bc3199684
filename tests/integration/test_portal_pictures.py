"""The portal's live views and pictures in Debian's headless Chromium, under the site's CSP.

A counting duration, the executions list refreshed by its event stream, the inputs an
execution ran with and "Run again", the DAG drawn with one arrow per dependency, the
timeline's bars (with a real Slurm job's queued time in test_portal_slurm_timeline.py),
the phone layout, and the plain words shown when the server cannot be reached.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import yaml
from tests.conftest import LiveServer, free_port
from tests.environments_support import MIXED_APPLICATION, unreachable_cluster
from tests.portal_support import Watch, logged_in, with_csp

if TYPE_CHECKING:
    from playwright.sync_api import Page

USER = "grace"


@pytest.fixture
def portal(fresh_server: LiveServer) -> Iterator[tuple[LiveServer, str]]:
    """A server of the test's own and a token of its user."""
    server = fresh_server.start()
    yield server, server.token(USER)


def _trigger(api: httpx.Client, workflow: str, inputs: dict[str, object]) -> str:
    response = api.post(f"/workflows/{workflow}", json={"inputs": inputs})
    assert response.status_code == 201, response.text
    return str(response.headers["location"].rsplit("/", 1)[1])


def _badge(page: Page, selector: str, status: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "([sel, status]) => document.querySelector(sel)?.textContent === status",
        arg=[selector, status],
        timeout=timeout,
    )


def test_the_duration_of_a_running_execution_counts_up_on_its_page_and_in_the_list(
    chromium: Page, portal: tuple[LiveServer, str]
) -> None:
    server, token = portal
    page = logged_in(chromium, server.url, token)
    with server.client(token) as api:
        execution_id = _trigger(api, "demo@local@sleep", {"seconds": 60})
        page.goto(f"{server.url}/ui/#/executions/{execution_id}")
        _badge(page, ".status-line .badge", "RUNNING")
        duration = page.locator(".facts dd .duration")
        page.wait_for_function(
            "() => /^[3-9] s$/.test(document.querySelector('.facts dd .duration').textContent)",
            timeout=10_000,
        )
        assert duration.inner_text() != "0 s"
        page.goto(f"{server.url}/ui/#/executions")
        cell = page.locator(f"tr[data-execution='{execution_id}'] .duration")
        first = cell.inner_text()
        page.wait_for_function(
            "([id, first]) => document.querySelector(`tr[data-execution='${id}'] .duration`)"
            ".textContent !== first",
            arg=[execution_id, first],
            timeout=5_000,
        )
        assert api.delete(f"/executions/{execution_id}").status_code in (200, 202, 204)
        # once ended, it stops counting: the server's end time
        _badge(page, f"tr[data-execution='{execution_id}'] .badge", "CANCELLED")
        ended = cell.inner_text()
        page.wait_for_timeout(2_000)
        assert cell.inner_text() == ended


def test_the_executions_list_shows_new_executions_and_status_changes_without_polling(
    chromium: Page, portal: tuple[LiveServer, str]
) -> None:
    server, token = portal
    page = logged_in(chromium, server.url, token)
    watch = Watch(page, server.url)
    page.route("**/*", with_csp)
    with server.client(token) as api:
        page.goto(f"{server.url}/ui/#/executions")
        page.get_by_text("No execution matches.").wait_for()
        execution_id = _trigger(api, "demo@local@sleep", {"seconds": 60})
        row = page.locator(f"tr[data-execution='{execution_id}']")
        row.wait_for(timeout=10_000)
        _badge(page, f"tr[data-execution='{execution_id}'] .badge", "RUNNING")
        assert page.get_by_text("1 execution(s) shown.").is_visible()
        api.delete(f"/executions/{execution_id}")
        _badge(page, f"tr[data-execution='{execution_id}'] .badge", "CANCELLED")
        second = _trigger(api, "demo@local@fail", {})
        _badge(page, f"tr[data-execution='{second}'] .badge", "FAILED")
        # newest first, and nothing was asked of the list route after the first page
        ids = page.locator("tbody tr").evaluate_all(
            "(rows) => rows.map((r) => r.dataset.execution)"
        )
        assert ids == [second, execution_id]
    lists = [u for m, u in watch.requests if re.search(r"//[^/]+/executions(\?|$)", u)]
    assert len(lists) == 1, lists
    assert len([u for _, u in watch.requests if "/events/executions" in u]) == 1
    assert not [u for _, u in watch.requests if re.search(r"/executions/[0-9a-f-]{36}", u)]
    assert watch.errors == []


def test_the_execution_page_shows_its_inputs_and_run_again_fills_the_form_with_them(
    chromium: Page, portal: tuple[LiveServer, str]
) -> None:
    server, token = portal
    page = logged_in(chromium, server.url, token)
    watch = Watch(page, server.url)
    page.route("**/*", with_csp)
    inputs = {"n": 5, "mode": "accurate", "label": "rerun-me", "tags": ["x", "y"]}
    with server.client(token) as api:
        first = _trigger(api, "demo@local@sweep", inputs)
        page.goto(f"{server.url}/ui/#/executions/{first}")
        _badge(page, ".status-line .badge", "SUCCEEDED")
        shown = page.locator(".inputs")
        assert shown.locator("dt").all_inner_texts()[:2] == ["n", "mode"]
        assert "rerun-me" in shown.inner_text() and '["x","y"]' in shown.inner_text()
        page.get_by_role("link", name="Run again").click()
        page.locator("#run-again-note").wait_for()
        assert page.locator("#input-n").input_value() == "5"
        assert page.locator("#input-mode").locator("option:checked").inner_text() == "accurate"
        assert page.locator("#input-label").input_value() == "rerun-me"
        assert page.locator("#input-tags").input_value() == "x, y"
        page.get_by_role("button", name="Run workflow").click()
        page.wait_for_url(re.compile(r".*/ui/#/executions/[0-9a-f-]{36}$"))
        second = page.url.rsplit("/", 1)[1]
        assert second != first
        ran = api.get(f"/executions/{second}").json()["inputs"]
        assert {k: ran[k] for k in inputs} == inputs
    assert watch.errors == []


def test_integer_inputs_are_numeric_fields(chromium: Page, portal: tuple[LiveServer, str]) -> None:
    server, token = portal
    page = logged_in(chromium, server.url, token)
    page.goto(f"{server.url}/ui/#/workflows/demo%40local%40sweep")
    field = page.locator("#input-n")
    field.wait_for()
    assert field.get_attribute("type") == "number"
    assert (field.get_attribute("step"), field.get_attribute("max")) == ("1", "8")
    field.focus()
    page.keyboard.press("ArrowUp")
    assert field.input_value() == "4"


def _stream_complete(page: Page) -> None:
    """Wait until the page has followed the execution to its end: no redraw comes after."""
    page.locator(".connection").filter(has_text="(complete)").wait_for()


def _node_look(page: Page, which: str) -> tuple[str, str]:
    """The state and fill of the graph's first node matching `which`, read in one go.

    The page draws the graph anew on each status event; a node found in one call and
    read in the next may already be detached (and a detached node has no computed style).
    """
    state, fill = page.evaluate(
        "(which) => { const g = document.querySelector(`svg.dag-graph g.node${which}`);"
        " return [g.dataset.state, getComputedStyle(g.querySelector('rect')).fill]; }",
        which,
    )
    return state, fill


def test_the_dag_is_a_graph_with_one_arrow_per_dependency_coloured_by_state(
    chromium: Page, portal: tuple[LiveServer, str]
) -> None:
    server, token = portal
    page = logged_in(chromium, server.url, token)
    watch = Watch(page, server.url)
    page.route("**/*", with_csp)
    with server.client(token) as api:
        done = _trigger(api, "demo@local@sweep", {"n": 2})
        failed = _trigger(api, "demo@local@fail", {})
    page.goto(f"{server.url}/ui/#/executions/{done}")
    _badge(page, ".status-line .badge", "SUCCEEDED")
    _stream_complete(page)
    graph = page.locator("svg.dag-graph")
    edges = graph.locator("path.edge").evaluate_all(
        "(paths) => paths.map((p) => [p.dataset.from, p.dataset.to, p.getAttribute('marker-end')])"
    )
    assert sorted((a, b) for a, b, _ in edges) == [
        ("left", "gather"),
        ("prepare", "left"),
        ("prepare", "right"),
        ("right", "gather"),
    ]
    marker = edges[0][2]
    assert all(m == marker for _, _, m in edges) and marker.startswith("url(#dag-arrow-")
    assert graph.locator(f"marker#{marker[5:-1]} path").count() == 1
    # each arrow runs from its need's box to its step's box, left to right
    boxes = graph.locator("g.node").evaluate_all(
        "(nodes) => Object.fromEntries(nodes.map((n) => "
        "[n.dataset.node, n.getBoundingClientRect().toJSON()]))"
    )
    for need, step, _ in edges:
        line = graph.locator(f"path.edge[data-from='{need}'][data-to='{step}']").bounding_box()
        assert line is not None
        assert abs(line["x"] - boxes[need]["right"]) < 5
        assert abs(line["x"] + line["width"] - boxes[step]["left"]) < 5
    assert _node_look(page, "[data-node='gather']") == ("SUCCEEDED", "rgb(227, 244, 232)")
    assert graph.locator("g.node[data-node='gather'] .node-state").text_content() == "SUCCEEDED"
    page.goto(f"{server.url}/ui/#/executions/{failed}")
    _badge(page, ".status-line .badge", "FAILED")
    _stream_complete(page)
    assert _node_look(page, "") == ("FAILED", "rgb(253, 232, 232)")
    assert watch.errors == []
    assert watch.foreign_requests() == []


def test_the_timeline_draws_each_steps_running_bar_and_end_on_one_axis(
    chromium: Page, portal: tuple[LiveServer, str]
) -> None:
    server, token = portal
    page = logged_in(chromium, server.url, token)
    with server.client(token) as api:
        execution_id = _trigger(api, "demo@local@sweep", {"n": 3})
    page.goto(f"{server.url}/ui/#/executions/{execution_id}")
    _badge(page, ".status-line .badge", "SUCCEEDED")
    bars = page.locator("svg.timeline").evaluate(
        """(svg) => Object.fromEntries([...svg.querySelectorAll("g.row")].map((row) => [
             row.dataset.row,
             Object.fromEntries([...row.querySelectorAll("rect")].map((r) => [
               r.dataset.phase, [r.x.baseVal.value, r.x.baseVal.value + r.width.baseVal.value],
             ])),
           ]))"""
    )
    assert list(bars) == ["prepare", "left", "right", "gather"]
    for step, phases in bars.items():
        # local steps are never queued: a running bar, then the mark where they were done
        assert sorted(phases) == ["done", "running"], step
        assert phases["running"][1] <= phases["done"][1]
    # one axis: a step starts after what it needs ended
    assert bars["gather"]["running"][0] >= bars["left"]["running"][1] - 1
    assert bars["left"]["running"][0] >= bars["prepare"]["running"][1] - 1
    assert "gather" in (page.locator("svg.timeline").get_attribute("aria-label") or "")


def test_at_375_px_the_tables_are_cards_and_nothing_scrolls_sideways(
    chromium: Page, portal: tuple[LiveServer, str]
) -> None:
    server, token = portal
    page = logged_in(chromium, server.url, token)
    page.set_viewport_size({"width": 375, "height": 812})
    with server.client(token) as api:
        execution_id = _trigger(api, "demo@local@sweep", {"n": 2})
        assert api.post("/ssh_keys", json={}).status_code == 201
    page.goto(f"{server.url}/ui/#/executions")
    # the list redraws a row on each of its execution's events: measure it once it has ended,
    # in one read of the page
    row = f"tr[data-execution='{execution_id}']"
    page.wait_for_function(
        "(sel) => /SUCCEEDED/.test(document.querySelector(sel)?.textContent ?? '')",
        arg=row,
        timeout=30_000,
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # every column stays visible, each value after its column's name
    cells = page.evaluate(
        """(sel) => [...document.querySelector(sel).cells].map((td) => {
             const box = td.getBoundingClientRect();
             return {left: box.left, right: box.right, width: box.width,
                     label: getComputedStyle(td, '::before').content};
           })""",
        row,
    )
    assert [cell["label"] for cell in cells] == [
        f'"{label}"' for label in ["Execution", "Workflow", "Status", "Started", "Duration"]
    ]
    for cell in cells:
        assert cell["width"] > 0 and cell["left"] >= 0 and cell["right"] <= 375, cell
    assert page.locator("thead").evaluate("(t) => t.getBoundingClientRect().height") <= 1
    page.goto(f"{server.url}/ui/#/keys")
    page.get_by_role("heading", level=1, name="SSH keys").wait_for()
    page.locator("tbody tr td code").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    delete = page.locator("tbody tr").first.get_by_role("button")
    box = delete.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 375
    page.goto(f"{server.url}/ui/#/executions/{execution_id}")
    _badge(page, ".status-line .badge", "SUCCEEDED")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_a_server_that_cannot_be_reached_is_said_in_plain_words_and_retried(
    chromium: Page, portal: tuple[LiveServer, str]
) -> None:
    server, token = portal
    page = logged_in(chromium, server.url, token)
    page.goto(f"{server.url}/ui/#/workflows")
    page.get_by_role("heading", level=1, name="Workflows").wait_for()
    server.stop()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Executions").click()
    notice = page.locator("#unreachable")
    notice.wait_for()
    assert notice.inner_text() == "Cannot reach the server. Retrying…"
    assert "Failed to fetch" not in page.locator("body").inner_text()
    server.start()
    page.get_by_role("heading", level=1, name="Executions").wait_for(timeout=40_000)
    assert notice.is_hidden()


def test_a_step_that_runs_on_another_environment_says_which(chromium: Page, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "mixed.yaml").write_text(MIXED_APPLICATION)
    # a cluster nobody answers on: the step waits for it, which is all the page needs
    hpc = unreachable_cluster(free_port())
    config = tmp_path / "hpcwaas.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "catalog_dirs": [str(catalog)],
                "environments": {"local": {"kind": "local"}, "hpc": hpc},
            }
        )
    )
    server = LiveServer(tmp_path / "data", free_port(), extra_args=["--config", str(config)])
    try:
        server.start()
        token = server.token(USER)
        with server.client(token) as api:
            key = api.post("/ssh_keys", json={}).json()["id"]
            execution_id = _trigger(
                api, "mixed@local@run", {"user_id": "hpcuser1", "vault_id": key}
            )
        page = logged_in(chromium, server.url, token)
        page.goto(f"{server.url}/ui/#/executions/{execution_id}")
        solve = page.locator("ol.dag [data-step='solve']")
        solve.wait_for()
        assert solve.locator(".step-env").inner_text() == "on hpc"
        assert page.locator("ol.dag [data-step='prepare'] .step-env").count() == 0
    finally:
        server.stop()
