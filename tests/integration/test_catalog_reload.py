"""A running server and its catalog: refused files, watching, SIGHUP reload, kept definitions."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer, wait_for_status


def _app(name: str, command: str, workflow: str = "wf") -> str:
    return f"""\
application: {name}
environments: [local]
expose: [{workflow}]
workflows:
  {workflow}:
    steps:
      first:
        kind: shell
        run: {command}
      second:
        kind: shell
        needs: [first]
        run: cat out.txt
    outputs:
      out: {{step: first, path: out.txt}}
"""


BROKEN = """\
application: broken
environments: [local]
expose: [wf]
workflows:
  wf:
    steps:
      only:
        kind: shell
        needs: [ghost]
        run: echo hi
"""


def _start(server: LiveServer, catalog: Path, watch: float) -> LiveServer:
    server.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
    server.env["HPCWAAS_CATALOG_WATCH_SECONDS"] = str(watch)
    return server.start()


def _ids(client: httpx.Client) -> set[str]:
    return {w["id"] for w in client.get("/workflows").json()["workflows"]}


def _eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.1)


def _touch_later(path: Path, text: str) -> None:
    """Rewrite a file so that its stat surely differs (same-size rewrites within one tick)."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    directory = tmp_path / "catalog"
    directory.mkdir()
    return directory


def test_an_invalid_file_is_refused_with_its_problems_and_the_others_are_served(
    fresh_server: LiveServer, catalog: Path
) -> None:
    (catalog / "good.yaml").write_text(_app("good", "echo good > out.txt"))
    (catalog / "broken.yaml").write_text(BROKEN)
    _start(fresh_server, catalog, 0)
    with fresh_server.client(fresh_server.token("alice")) as api:
        assert _ids(api) == {"good@local@wf"}
    ready = httpx.get(fresh_server.url + "/readyz")
    assert ready.status_code == 200
    refused = ready.json()["catalog_refused"]
    assert refused == [
        {
            "file": str(catalog / "broken.yaml"),
            "problem": f"{catalog / 'broken.yaml'}:9: workflow 'wf': step 'only' needs unknown "
            "step 'ghost' (hint: needs lists steps of the same workflow (others: none))",
        }
    ]
    log = fresh_server.log_path.read_text()
    assert f"workflow file not loaded: {catalog / 'broken.yaml'}:9: " in log


def test_readiness_fails_only_when_every_file_is_refused(
    fresh_server: LiveServer, catalog: Path
) -> None:
    (catalog / "broken.yaml").write_text(BROKEN)
    _start(fresh_server, catalog, 0)
    ready = httpx.get(fresh_server.url + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["catalog"] == "no application loaded: 1 file(s) refused"


def test_the_watched_directory_is_reloaded_when_a_file_is_added_changed_or_removed(
    fresh_server: LiveServer, catalog: Path
) -> None:
    (catalog / "one.yaml").write_text(_app("one", "echo one > out.txt"))
    _start(fresh_server, catalog, 0.2)
    with fresh_server.client(fresh_server.token("alice")) as api:
        assert _ids(api) == {"one@local@wf"}
        (catalog / "two.yaml").write_text(_app("two", "echo two > out.txt"))
        _eventually(lambda: _ids(api) == {"one@local@wf", "two@local@wf"})
        _touch_later(catalog / "two.yaml", _app("two", "echo two > out.txt", workflow="renamed"))
        _eventually(lambda: _ids(api) == {"one@local@wf", "two@local@renamed"})
        (catalog / "one.yaml").unlink()
        _eventually(lambda: _ids(api) == {"two@local@renamed"})
        # A file that breaks is refused on reload; the rest stays served.
        (catalog / "broken.yaml").write_text(BROKEN)
        _eventually(lambda: "catalog_refused" in httpx.get(fresh_server.url + "/readyz").json())
        assert _ids(api) == {"two@local@renamed"}


def test_catalog_reload_command_checks_the_files_then_the_server_reloads_at_once(
    fresh_server: LiveServer, catalog: Path
) -> None:
    (catalog / "one.yaml").write_text(_app("one", "echo one > out.txt"))
    _start(fresh_server, catalog, 0)  # no watching: only the command reloads
    (catalog / "two.yaml").write_text(_app("two", "echo two > out.txt"))
    (catalog / "broken.yaml").write_text(BROKEN)
    with fresh_server.client(fresh_server.token("alice")) as api:
        time.sleep(0.5)
        assert _ids(api) == {"one@local@wf"}
        result = fresh_server.admin("catalog", "reload")
        # The broken file is reported, and exits 1; the valid files are loaded anyway.
        assert result.returncode == 1
        assert f"{catalog / 'broken.yaml'}:9: " in result.stderr
        assert "Asked the server" in result.stdout
        _eventually(lambda: _ids(api) == {"one@local@wf", "two@local@wf"})


def test_catalog_reload_without_a_running_server_says_so(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", 1)
    result = server.admin("catalog", "reload")
    assert result.returncode == 1
    assert "no server is running with data_dir" in result.stderr


def test_the_pid_file_is_removed_when_the_server_stops(
    fresh_server: LiveServer, catalog: Path
) -> None:
    _start(fresh_server, catalog, 0)
    pid_file = fresh_server.data_dir / "hpcwaas-api.pid"
    assert fresh_server.process is not None
    assert pid_file.read_text().strip() == str(fresh_server.process.pid)
    fresh_server.stop()
    assert not pid_file.exists()


def test_a_running_execution_finishes_with_its_own_definition_when_its_file_changes_or_goes(
    fresh_server: LiveServer, catalog: Path
) -> None:
    path = catalog / "slow.yaml"
    original = _app("slow", "sleep 2; echo first-version > out.txt")
    path.write_text(original)
    _start(fresh_server, catalog, 0.2)
    with fresh_server.client(fresh_server.token("alice")) as api:
        created = api.post("/workflows/slow@local@wf")
        assert created.status_code == 201
        execution_id = created.headers["location"].rsplit("/", 1)[1]
        wait_for_status(api, execution_id, {"RUNNING"})
        changed = original.replace(
            "run: cat out.txt",
            "run: cat out.txt\n      third:\n        kind: shell\n        run: echo 3",
        ).replace("first-version", "second-version")
        _touch_later(path, changed)
        _eventually(
            lambda: (
                api.get("/workflows/slow@local@wf").json()["steps"] == ["first", "second", "third"]
            )
        )
        path.unlink()
        _eventually(lambda: "slow@local@wf" not in _ids(api))
        body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED"})
        assert body["status"] == "SUCCEEDED", body
        assert body["outputs"] == {"out": "first-version\n"}
        assert body["definition_digest"] == hashlib.sha256(original.encode()).hexdigest()
        # Its steps still show their needs, from the definition it ran.
        assert {s["name"]: s["needs"] for s in body["steps"]} == {
            "first": [],
            "second": ["first"],
        }
