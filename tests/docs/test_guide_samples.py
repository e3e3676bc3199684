"""The code samples of the guides run: marked shell blocks against a real server, YAML files
through the catalog loader.

A fenced block is a sample when the line before its fence is an HTML comment:

- `<!-- sample: run -->` (docs/user-guide.md): each line is run with bash against the session
  server, with the guide's placeholders filled in (see `fill`);
- `<!-- sample: workflow -->` (docs/workflows.md, docs/workflows-tutorial.md): a complete
  workflow file, which must load through `Catalog.load` with no problem;
- `<!-- sample: workflow-run -->` (docs/workflows.md, docs/workflows-tutorial.md): a complete
  workflow file for the `local` environment that also runs: each exposed workflow, triggered on
  a real server with its defaults (and a value for each required secret), must succeed;
- `<!-- sample: tutorial -->` (docs/workflows-tutorial.md): commands of the tutorial, run in
  order with bash, from a directory holding the tutorial's `catalog/tutorial.yaml` (its first
  `workflow-run` sample), against a server started as the tutorial starts it (the embedded
  default with `HPCWAAS_CATALOG_DIRS`), `HW_API_URL` and `HW_ACCESS_TOKEN` set;
- `<!-- sample: vault-policy -->` (docs/operator-guide.md): a Vault policy, the one the tests
  on OpenBao give (tests/openbao_support.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import BIN, LiveServer, free_port, wait_for_status
from tests.openbao_support import DLS_POLICY, HPCWAAS_POLICY

from hpcwaas.catalog.catalog import Catalog

DOCS = Path(__file__).resolve().parents[2] / "docs"
USER_GUIDE = DOCS / "user-guide.md"
WORKFLOWS_GUIDE = DOCS / "workflows.md"
TUTORIAL = DOCS / "workflows-tutorial.md"
OPERATOR_GUIDE = DOCS / "operator-guide.md"
# The pages whose workflow samples are loaded (and, for workflow-run, run).
WORKFLOW_PAGES = (WORKFLOWS_GUIDE, TUTORIAL)
DEMO_FILE = Path(__file__).resolve().parents[2] / "src" / "hpcwaas" / "examples" / "demo.yaml"

ENVIRONMENTS = {"local": "Local host", "cluster": "Cluster"}
KINDS = {"local": "local", "cluster": "slurm"}
# the guide's cluster has a Data Logistics Service and an Image Creation service
SERVICES = {"local": frozenset[str](), "cluster": frozenset({"airflow", "image_creation"})}

MARKER = re.compile(r"^\s*<!--\s*sample:\s*([\w-]+)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,})")
TRIGGERED = re.compile(r"Workflow triggered with execution ID: (\S+)")


def samples(path: Path, kind: str) -> list[tuple[int, str]]:
    """The fenced blocks of ``path`` marked ``<!-- sample: kind -->``: (line of the fence, text)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        marker = MARKER.match(line)
        if not marker or marker.group(1) != kind:
            continue
        fence = FENCE.match(lines[index + 1]) if index + 1 < len(lines) else None
        assert fence, f"{path.name}:{index + 1}: a sample marker must precede a fence"
        indent, ticks = fence.groups()
        body: list[str] = []
        for inner in lines[index + 2 :]:
            if inner.strip().startswith(ticks) and not inner.strip().strip("`"):
                break
            body.append(inner[len(indent) :] if inner.startswith(indent) else inner)
        else:
            raise AssertionError(f"{path.name}:{index + 2}: unclosed sample block")
        found.append((index + 2, textwrap.dedent("\n".join(body)) + "\n"))
    return found


def workflow_samples(kinds: tuple[str, ...] = ("workflow", "workflow-run")) -> list[pytest.param]:
    return [
        pytest.param(text, id=f"{page.name}:{line}")
        for page in WORKFLOW_PAGES
        for kind in kinds
        for line, text in samples(page, kind)
    ]


def test_guides_have_samples() -> None:
    """The markers are there: a lost marker would silently test nothing."""
    run = samples(USER_GUIDE, "run")
    commands = "\n".join(text for _, text in run)
    for command in (
        "ssh_keys key-gen",
        "workflows list",
        "workflows trigger -f",
        "executions status",
        "executions cancel",
        "waas help",
    ):
        assert command in commands, f"no marked user-guide sample runs {command!r}"
    assert len(samples(WORKFLOWS_GUIDE, "workflow")) >= 2
    assert samples(WORKFLOWS_GUIDE, "workflow-run")
    assert samples(TUTORIAL, "workflow-run"), "the tutorial's local workflow is not run"
    assert samples(TUTORIAL, "workflow"), "the tutorial's Slurm workflow is not loaded"
    tutorial = "\n".join(text for _, text in samples(TUTORIAL, "tutorial"))
    for command in ("workflows validate", "workflows trigger --dry-run", "workflows trigger -f"):
        assert command in tutorial, f"no marked tutorial sample runs {command!r}"


def test_the_guides_vault_policies_are_the_ones_tested_on_openbao() -> None:
    """hpcwaas's AppRole policy, then a DLS's, exactly as the OpenBao tests grant them."""
    policies = [text for _, text in samples(OPERATOR_GUIDE, "vault-policy")]
    assert policies == [HPCWAAS_POLICY, DLS_POLICY]


@pytest.mark.parametrize("text", workflow_samples())
def test_workflow_sample_loads(text: str, tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    path.write_text(text, encoding="utf-8")
    catalog = Catalog.load([path], ENVIRONMENTS, KINDS, None, SERVICES)
    assert catalog.problems == []
    assert catalog.workflows, "no workflow deployed"


@pytest.mark.parametrize("text", workflow_samples(("workflow-run",)))
def test_runnable_workflow_sample_succeeds(text: str, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "sample.yaml").write_text(text, encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"catalog_dirs": [str(catalog)]}))
    live = LiveServer(tmp_path / "data", free_port(), extra_args=["--config", str(config)])
    live.start()
    try:
        app = Catalog.load([catalog / "sample.yaml"], ENVIRONMENTS, KINDS, None, SERVICES)
        assert app.problems == []
        with live.client(live.token("sampler")) as api:
            for workflow in app.workflows.values():
                if workflow.environment != "local":
                    continue
                inputs = {
                    name: "sample-secret-value"
                    for name, spec in workflow.spec.inputs.items()
                    if spec.type == "secret"
                }
                response = api.post(f"/workflows/{workflow.id}", json={"inputs": inputs})
                assert response.status_code == 201, response.text
                execution_id = response.headers["Location"].rsplit("/", 1)[-1]
                body = wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED", "CANCELLED"})
                logs = api.get(f"/executions/{execution_id}/logs", params={"levels": 15})
                assert body["status"] == "SUCCEEDED", (workflow.id, logs.json())
    finally:
        live.stop()


def test_demo_sample_is_the_packaged_file() -> None:
    """'The demo application, in full' is src/hpcwaas/examples/demo.yaml, word for word."""
    texts = [text for _, text in samples(WORKFLOWS_GUIDE, "workflow")]
    assert DEMO_FILE.read_text(encoding="utf-8") in texts


class SampleRunner:
    """Runs the lines of a user-guide sample as one user, with a home of its own."""

    def __init__(self, server: LiveServer, user: str, home: Path) -> None:
        self.server = server
        self.token = server.token(user)
        self.home = home
        self.started: list[str] = []

    def trigger(self, workflow: str, inputs: dict[str, object], running: bool = False) -> str:
        with self.server.client(self.token) as api:
            response = api.post(f"/workflows/{workflow}", json={"inputs": inputs})
            assert response.status_code == 201, response.text
            execution_id = response.headers["Location"].rsplit("/", 1)[-1]
            self.started.append(execution_id)
            if running:
                wait_for_status(api, execution_id, {"RUNNING"})
        return execution_id

    def fill(self, line: str) -> str:
        """The guide's placeholders, filled in for this server and user.

        `<Execution_ID>` is an execution of demo@local@hello triggered just before, except on
        an `executions cancel` line, where it is a running demo@local@sleep (only a running
        execution can be cancelled).
        """
        line = line.replace("<api_url>", shlex.quote(self.server.url))
        line = line.replace("<access_token>", shlex.quote(self.token))
        line = line.replace("<workflow_id>", "demo@local@hello")
        line = line.replace("input1Name=input1Value -i input2Name=input2Value", "name=Ada")
        if "<Execution_ID>" in line:
            if "executions cancel" in line:
                execution_id = self.trigger("demo@local@sleep", {"seconds": 300}, running=True)
            else:
                execution_id = self.trigger("demo@local@hello", {"name": "Ada"})
            line = line.replace("<Execution_ID>", execution_id)
        assert not re.search(r"<[A-Za-z_]+>", line), f"unfilled placeholder in {line!r}"
        return line

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("HW_") and k not in ("COLUMNS", "LINES", "WAAS_DEBUG")
        }
        env["HOME"] = str(self.home)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run(
            ["bash", "-c", f"set -euo pipefail\n{line}\n"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            stdin=subprocess.DEVNULL,
            cwd=self.home,
        )

    def cleanup(self) -> None:
        with self.server.client(self.token) as api:
            for execution_id in self.started:
                api.delete(f"/executions/{execution_id}")  # 409 once it ended: fine


def run_samples() -> list[pytest.param]:
    return [
        pytest.param(text, id=f"user-guide.md:{line}") for line, text in samples(USER_GUIDE, "run")
    ]


@pytest.fixture
def runner(server: LiveServer, user: str, tmp_path: Path) -> Iterator[SampleRunner]:
    home = tmp_path / "home"
    home.mkdir()
    sample_runner = SampleRunner(server, user, home)
    yield sample_runner
    sample_runner.cleanup()


@pytest.mark.integration
@pytest.mark.parametrize("text", run_samples())
def test_user_guide_sample_runs(text: str, runner: SampleRunner) -> None:
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = runner.fill(line)
        result = runner.run(command)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{line}\n-> exit {result.returncode}\n{output}"
        assert "Traceback" not in output, f"{line}\n{output}"
        if "workflows trigger" in line:
            assert TRIGGERED.search(result.stdout), output


def test_tutorial_commands_run(tmp_path: Path) -> None:
    """The tutorial's local part, as a reader types it: validate, list, show, dry run, trigger,
    logs, status; `<Execution_ID>` is the execution the last trigger printed."""
    home = tmp_path / "tutorial"
    (home / "catalog").mkdir(parents=True)
    [(_, workflow)] = samples(TUTORIAL, "workflow-run")
    (home / "catalog" / "tutorial.yaml").write_text(workflow, encoding="utf-8")
    live = LiveServer(
        home / "data",
        free_port(),
        env={"HPCWAAS_CATALOG_DIRS": json.dumps([str(home / "catalog")])},
    )
    live.start()
    try:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HW_", "HPCWAAS_")) and k not in ("COLUMNS", "LINES")
        }
        env.update(
            HOME=str(tmp_path),
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            HW_API_URL=live.url,
            HW_ACCESS_TOKEN=live.token("alice"),
        )
        execution_id: str | None = None
        for _, text in samples(TUTORIAL, "tutorial"):
            for line in text.splitlines():
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                command = line
                if "<Execution_ID>" in command:
                    assert execution_id, f"{line!r} needs a trigger before it"
                    command = command.replace("<Execution_ID>", execution_id)
                result = subprocess.run(
                    ["bash", "-c", f"set -euo pipefail\n{command}\n"],
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=120,
                    stdin=subprocess.DEVNULL,
                    cwd=home,
                )
                output = result.stdout + result.stderr
                assert result.returncode == 0, f"{line}\n-> exit {result.returncode}\n{output}"
                assert "Traceback" not in output, f"{line}\n{output}"
                if "workflows trigger" in line and "--dry-run" not in line:
                    triggered = TRIGGERED.search(result.stdout)
                    assert triggered, output
                    execution_id = triggered.group(1)
                    assert "Status: SUCCEEDED" in result.stdout, output
    finally:
        live.stop()
