""" "Outputs" means one thing: `waas executions outputs` and the portal's downloads list the
same items (the workflow's text outputs, then the files stage_out stored) and give the same
bytes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.conftest import BIN, LiveServer, wait_for_status
from tests.portal_support import Watch, logged_in, with_csp

if TYPE_CHECKING:
    from playwright.sync_api import Page

RESULTS = """
application: results
environments: [local]
expose: [both]
workflows:
  both:
    steps:
      make:
        kind: shell
        run: |
          mkdir -p out
          echo "summary line" > out/summary.txt
          printf 'a,b\\n1,2\\n' > out/table.csv
      keep:
        kind: stage_out
        needs: [make]
        source_path: out/table.csv
        output: table
    outputs:
      summary: {step: make, path: out/summary.txt}
"""


@pytest.fixture
def results_server(fresh_server: LiveServer, tmp_path: Path) -> Iterator[LiveServer]:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "results.yaml").write_text(RESULTS)
    fresh_server.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
    yield fresh_server.start()


def _waas(server: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HW_")}
    return subprocess.run(
        [str(BIN / "waas"), "--api_url", server.url, f"-t={token}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_the_cli_and_the_portal_list_and_give_the_same_outputs(
    chromium: Page, results_server: LiveServer, tmp_path: Path
) -> None:
    server = results_server
    token = server.token("ada")
    with server.client(token) as api:
        response = api.post("/workflows/results@local@both", json={"inputs": {}})
        assert response.status_code == 201, response.text
        execution_id = response.headers["location"].rsplit("/", 1)[1]
        wait_for_status(api, execution_id, {"SUCCEEDED"})

    listed = _waas(server, token, "--json", "executions", "outputs", execution_id)
    assert listed.returncode == 0, listed.stderr
    cli_items = [(o["name"], o["file_name"], o["size"]) for o in json.loads(listed.stdout)]
    assert cli_items == [("summary", "summary.txt", 13), ("table", "table.csv", 8)]
    table = _waas(server, token, "executions", "outputs", execution_id).stdout
    assert [line.split(" | ")[0].strip() for line in table.splitlines()[2::2]] == [
        "summary",
        "table",
    ]
    cli_dir = tmp_path / "cli"
    fetched = _waas(
        server, token, "executions", "outputs", execution_id, "--download", str(cli_dir)
    )
    assert fetched.stdout.split() == [str(cli_dir / "summary.txt"), str(cli_dir / "table.csv")]

    page = logged_in(chromium, server.url, token)
    watch = Watch(page, server.url)
    page.route("**/*", with_csp)
    page.goto(f"{server.url}/ui/#/executions/{execution_id}")
    page.locator(".outputs li").nth(1).wait_for()
    links = page.locator(".outputs a")
    assert links.all_inner_texts() == ["Download summary", "Download table"]
    portal_dir = tmp_path / "portal"
    portal_dir.mkdir()
    for index in range(links.count()):
        with page.expect_download() as info:
            links.nth(index).click()
        download = info.value
        download.save_as(str(portal_dir / download.suggested_filename))
    for name in ("summary.txt", "table.csv"):
        assert (portal_dir / name).read_bytes() == (cli_dir / name).read_bytes(), name
    digest = hashlib.sha256((portal_dir / "table.csv").read_bytes()).hexdigest()
    assert digest == json.loads(listed.stdout)[1]["sha256"]
    assert watch.errors == []
