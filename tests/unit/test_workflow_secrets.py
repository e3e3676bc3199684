"""A workflow's ``secrets:``: key store values named in the file, used only in env: and stage_in
URLs, read when an execution starts, hidden everywhere else."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from tests.engine_support import Harness, make_workflow
from tests.http_files import HttpFiles, http_files

from hpcwaas.api.states import ExecutionStatus
from hpcwaas.catalog import CatalogFileError
from hpcwaas.catalog.catalog import DeployedWorkflow
from hpcwaas.catalog.kinds.base import Preparation
from hpcwaas.catalog.kinds.shell import ShellKind
from hpcwaas.catalog.kinds.slurm import SlurmStep, prepare_slurm_step
from hpcwaas.catalog.kinds.stage_in import StageInStep, prepare_stage_in
from hpcwaas.catalog.kinds.transfers import TransferError
from hpcwaas.catalog.loader import read_application
from hpcwaas.catalog.model import ApplicationSpec, KeyStoreSecretSpec
from hpcwaas.engine.plan import build_plan
from hpcwaas.engine.workflow_secrets import WorkflowSecretMissing, read_workflow_secrets
from hpcwaas.schedulers.slurm import SlurmDefaults
from hpcwaas.secrets.embedded import EmbeddedKeyStore, load_or_create_master_key
from hpcwaas.settings import LocalEnvironment, Settings
from hpcwaas.store.database import Database

__all__ = ["http_files"]  # a fixture used here

SECRETS = "secrets:\n  token: {path: apps/demo/api, key: token}\n"


def app(workflow_body: str) -> str:
    body = textwrap.indent(textwrap.dedent(workflow_body), "    ")
    return f"application: app\nenvironments: [local]\nexpose: [w]\nworkflows:\n  w:\n{body}"


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "app.yaml"
    path.write_text(text, encoding="utf-8")
    return read_application(path).application.workflows["w"]


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(CatalogFileError) as info:
        load(tmp_path, text)
    return info.value.problems


# -- load time -------------------------------------------------------------------------------


def test_secret_in_env_loads(tmp_path):
    spec = load(
        tmp_path,
        app(SECRETS + "steps:\n  s: {kind: shell, run: 'true', env: {T: '{{ secrets.token }}'}}\n"),
    )
    assert spec.secrets["token"] == KeyStoreSecretSpec(path="apps/demo/api", key="token")


def test_secret_in_a_command_is_refused_with_its_line_and_the_env_hint(tmp_path):
    [problem] = problems_of(
        tmp_path, app(SECRETS + "steps:\n  s: {kind: shell, run: 'curl -H {{ secrets.token }}'}\n")
    )
    assert problem.startswith(f"{tmp_path / 'app.yaml'}:9: ")
    assert "the template uses secrets.token, but secrets may only reach a step through env:" in (
        problem
    )
    assert "$TOKEN" in problem


def test_secret_in_a_slurm_script_and_a_pycompss_env_is_refused(tmp_path):
    found = problems_of(
        tmp_path,
        app(
            SECRETS + "steps:\n"
            "  a: {kind: slurm, script: 'echo {{ secrets.token }}'}\n"
            "  b: {kind: pycompss, app: x.py, env: {T: '{{ secrets.token }}'}}\n"
        ),
    )
    assert len(found) == 2
    assert all("secrets may only reach a step through env:" in p for p in found)


def test_undeclared_secret_in_env_is_refused_with_the_declared_names(tmp_path):
    [problem] = problems_of(
        tmp_path,
        app(SECRETS + "steps:\n  s: {kind: shell, run: 'true', env: {T: '{{ secrets.tokn }}'}}\n"),
    )
    assert "undefined secret 'tokn' (declared: token)" in problem
    assert "secrets: {<name>: {path: ..., key: ...}}" in problem


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("ssh-credentials/abc", "kept by the service for itself"),
        ("execution-secrets/abc", "kept by the service for itself"),
        ("apps/../ssh-credentials/abc", "has a '.' or '..' segment"),
        ("/apps/demo", "String should match pattern"),
    ],
)
def test_a_secret_path_a_workflow_may_not_read_is_refused(tmp_path, path, message):
    text = app(
        f"secrets:\n  t: {{path: '{path}', key: k}}\nsteps:\n  s: {{kind: shell, run: 'true'}}\n"
    )
    [problem] = problems_of(tmp_path, text)
    assert message in problem


def test_stage_in_url_may_use_a_secret_but_not_its_target_path(tmp_path):
    ok = load(
        tmp_path,
        app(
            SECRETS + "steps:\n  s: {kind: stage_in, "
            "url: 'https://h.example/f?key={{ secrets.token }}', target_path: f}\n"
        ),
    )
    assert ok.steps["s"].kind == "stage_in"
    [problem] = problems_of(
        tmp_path,
        app(
            SECRETS + "steps:\n  s: {kind: stage_in, url: 'https://h.example/f', "
            "target_path: '{{ secrets.token }}'}\n"
        ),
    )
    assert "s' target_path: the template uses secrets.token" in problem


# -- rendering -------------------------------------------------------------------------------


def test_the_step_environment_gets_the_value_and_the_command_does_not(tmp_path):
    spec = load(
        tmp_path,
        app(
            SECRETS
            + "steps:\n  s: {kind: shell, run: 'echo \"$T\"', env: {T: '{{ secrets.token }}'}}\n"
        ),
    )
    invocation = ShellKind().prepare(
        spec.steps["s"],
        Preparation(
            execution_id="e1", step_name="s", inputs={}, workflow_secrets={"token": "tok-123"}
        ),
    )
    assert invocation.env["T"] == "tok-123"
    assert "tok-123" not in invocation.command


def test_a_slurm_wrapper_exporting_a_secret_is_removed_after_submission():
    spec = SlurmStep(kind="slurm", script='echo "$T"', env={"T": "{{ secrets.token }}"})
    request = Preparation(
        execution_id="e1",
        step_name="s",
        inputs={},
        work_dir="/work/e1",
        workflow_secrets={"token": "tok-123"},
    )
    submission = prepare_slurm_step(spec, request, SlurmDefaults())
    wrapper = "/work/e1/.hpcwaas-s.sbatch"
    assert b"tok-123" in submission.files[wrapper]
    assert submission.submit_command.endswith(f"rm -f -- {wrapper}; exit $status")


def test_stage_in_url_takes_a_secret_in_its_query_or_user_info_only():
    def plan(url: str):  # type: ignore[no-untyped-def]
        spec = StageInStep(kind="stage_in", url=url, target_path="f")
        return prepare_stage_in(
            spec, execution_id="e1", inputs={}, max_bytes=10, workflow_secrets={"t": "tok-123"}
        )

    assert plan("https://h.example/f?key={{ secrets.t }}").url.endswith("?key=tok-123")
    assert plan("https://u:{{ secrets.t }}@h.example/f").safe_url == "https://h.example/f"
    with pytest.raises(TransferError) as info:
        plan("https://h.example/{{ secrets.t }}/f")
    assert "outside its user info and query string" in str(info.value)
    assert "tok-123" not in str(info.value)


def test_a_dry_run_shows_the_secret_as_a_placeholder(tmp_path):
    app_spec = ApplicationSpec.model_validate(
        {
            "application": "demo",
            "environments": ["local"],
            "expose": ["wf"],
            "workflows": {
                "wf": {
                    "secrets": {"token": {"path": "apps/demo/api", "key": "token"}},
                    "steps": {
                        "s": {"kind": "shell", "run": "true", "env": {"T": "{{ secrets.token }}"}}
                    },
                }
            },
        }
    )
    workflow = DeployedWorkflow(
        id="demo@local@wf",
        application=app_spec,
        environment="local",
        environment_name="Local",
        name="wf",
        spec=app_spec.workflows["wf"],
        digest="d" * 64,
        source=Path("demo.yaml"),
    )
    plan = build_plan(workflow, {}, LocalEnvironment(kind="local"), local_work_root=tmp_path)
    assert plan.steps[0].env is not None
    assert plan.steps[0].env["T"] == "[secret]"


# -- reading from the key store --------------------------------------------------------------


@pytest.fixture
async def keystore(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite3'}")
    await db.prepare_schema()
    yield EmbeddedKeyStore(db, load_or_create_master_key(tmp_path / "master.key"))
    await db.dispose()


async def test_secrets_are_read_by_path_and_key(keystore):
    await keystore.put("apps/demo/api", {"token": "tok-123", "user": "ada"})
    specs = {
        "token": KeyStoreSecretSpec(path="apps/demo/api", key="token"),
        "user": KeyStoreSecretSpec(path="apps/demo/api", key="user"),
    }
    assert await read_workflow_secrets(keystore, specs) == {"token": "tok-123", "user": "ada"}


async def test_a_missing_entry_or_key_names_the_path_and_the_command_never_a_value(keystore):
    await keystore.put("apps/demo/api", {"user": "tok-123"})
    with pytest.raises(WorkflowSecretMissing) as info:
        await read_workflow_secrets(
            keystore, {"token": KeyStoreSecretSpec(path="apps/demo/api", key="token")}
        )
    message = str(info.value)
    assert "secret 'token': the key store entry at path 'apps/demo/api' has no key 'token'" in (
        message
    )
    assert "hpcwaas-api secrets put apps/demo/api token" in message
    assert "tok-123" not in message
    with pytest.raises(WorkflowSecretMissing) as info:
        await read_workflow_secrets(
            keystore, {"t": KeyStoreSecretSpec(path="apps/none", key="token")}
        )
    assert "has no entry at path 'apps/none'" in str(info.value)


async def test_a_stage_in_sends_the_secret_in_its_query_and_logs_the_url_without_it(
    db: Database, tmp_path: Path, http_files: HttpFiles
) -> None:
    store = EmbeddedKeyStore(db, load_or_create_master_key(tmp_path / "master.key"))
    await store.put("apps/demo/api", {"token": "tok-123"})
    url = http_files.add("/data/in.bin", b"payload")
    workflow = make_workflow(
        {
            "fetch": {
                "kind": "stage_in",
                "url": url + "?key={{ secrets.token }}",
                "target_path": "in.bin",
            }
        }
    )
    workflow.spec.secrets["token"] = KeyStoreSecretSpec(path="apps/demo/api", key="token")
    harness = Harness(db, Settings(data_dir=tmp_path / "data"), keystore=store)
    await harness.engine.start()
    try:
        execution_id = await harness.trigger(workflow)
        record = await harness.finished(execution_id)
        log = "\n".join(r.content for r in await harness.logs(execution_id))
    finally:
        await harness.engine.stop()
    assert record.status is ExecutionStatus.SUCCEEDED, log
    assert http_files.requested == ["/data/in.bin?key=tok-123"]
    assert f"Downloading {url} to in.bin" in log
    assert "tok-123" not in log
