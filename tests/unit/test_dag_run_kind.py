"""The ``dag_run`` step kind: its keys and checks, the conf it renders, and its Airflow run IDs."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from hpcwaas.api.states import StepState
from hpcwaas.catalog import CatalogFileError
from hpcwaas.catalog.kinds.base import ClusterAccess, Preparation
from hpcwaas.catalog.kinds.dag_run import DagRunKind, DagRunStep
from hpcwaas.catalog.loader import read_application
from hpcwaas.engine.airflow import AirflowService, _error_of, _Watch, log_body, run_id_of
from hpcwaas.engine.airflow_api import TaskInstance
from hpcwaas.engine.remote_services import RemoteServices
from hpcwaas.engine.remotesteps import RemoteEnd, RemoteError, RunKey
from hpcwaas.settings import AirflowConfig, Settings

KIND = DagRunKind()
ACCESS = ClusterAccess(host="login.hpc.example", port=2222, login="jdoe", key_id="key-1")


def load_step(tmp_path: Path, step: str, inputs: str = "{}", secrets: str = "{}") -> DagRunStep:
    body = textwrap.indent(textwrap.dedent(step), "      ")
    text = (
        "application: app\nenvironments: [hpc]\nexpose: [w]\nworkflows:\n"
        f"  w:\n    inputs: {inputs}\n    secrets: {secrets}\n    steps:\n{body}"
    )
    path = tmp_path / "app.yaml"
    path.write_text(text)
    spec = read_application(path).application.workflows["w"].steps["s"]
    assert isinstance(spec, DagRunStep)
    return spec


def problems_of(tmp_path: Path, step: str, inputs: str = "{}") -> str:
    with pytest.raises(CatalogFileError) as info:
        load_step(tmp_path, step, inputs)
    return "\n".join(info.value.problems)


def prepared(step: DagRunStep, inputs: dict[str, object], **more: object) -> dict[str, object]:
    request = Preparation(execution_id="e1", step_name="s", inputs=inputs, access=ACCESS, **more)  # type: ignore[arg-type]
    return KIND.prepare(step, request).conf


def test_conf_gets_the_cluster_account_as_the_dls_pipelines_expect_it(tmp_path):
    step = load_step(
        tmp_path,
        """\
        s:
          kind: dag_run
          dag_id: plainhttp2ssh
          conf: {url: "{{ inputs.url }}", target: "data/{{ execution.id }}.csv", force: false}
        """,
        inputs="{url: {type: string}}",
    )
    conf = prepared(step, {"url": "https://data.example/x.csv"})
    assert conf == {
        "host": "login.hpc.example",
        "port": 2222,
        "login": "jdoe",
        "vault_id": "key-1",
        "url": "https://data.example/x.csv",
        "target": "data/e1.csv",
        "force": False,
    }


def test_prefixes_give_ssh2ssh_its_source_and_target_and_a_conf_key_wins(tmp_path):
    step = load_step(
        tmp_path,
        """\
        s:
          kind: dag_run
          dag_id: ssh2ssh
          cluster_access: [source_, target_]
          conf: {target_host: other.example, source_path: a, target_path: b}
        """,
    )
    conf = prepared(step, {})
    assert conf["source_host"] == "login.hpc.example" and conf["target_host"] == "other.example"
    assert conf["source_vault_id"] == conf["target_vault_id"] == "key-1"
    assert "host" not in conf


def test_no_cluster_access_adds_nothing(tmp_path):
    step = load_step(tmp_path, "s: {kind: dag_run, dag_id: d, cluster_access: []}")
    assert prepared(step, {}) == {}


def test_an_input_alone_keeps_its_type_and_hostile_text_stays_data(tmp_path):
    step = load_step(
        tmp_path,
        """\
        s:
          kind: dag_run
          dag_id: d
          cluster_access: []
          conf: {n: "{{ inputs.n }}", files: "{{ inputs.files }}", note: "{{ inputs.note }}"}
        """,
        inputs="{n: {type: integer}, files: {type: list}, note: {type: string}}",
    )
    hostile = "{{ 7 * 7 }}'); import os; os.system('id') #"
    conf = prepared(step, {"n": 3, "files": ["a", "b"], "note": hostile})
    assert conf == {"n": 3, "files": ["a", "b"], "note": hostile}
    json.dumps(conf)  # JSON data, nothing else


def test_a_conf_holding_a_secret_is_marked_and_never_shown_by_a_dry_run(tmp_path):
    step = load_step(
        tmp_path,
        """\
        s:
          kind: dag_run
          dag_id: d
          conf: {token: "{{ secrets.b2share }}", url: "https://x.example"}
        """,
        secrets="{b2share: {path: apps/b2share, key: token}}",
    )
    request = Preparation(
        execution_id="e1",
        step_name="s",
        inputs={},
        workflow_secrets={"b2share": "s3cr3t-value"},
        access=ACCESS,
    )
    assert KIND.prepare(step, request).secret
    planned = KIND.plan(step, request)
    assert "s3cr3t-value" not in json.dumps(planned.__dict__)
    plain = load_step(tmp_path, "s: {kind: dag_run, dag_id: d, conf: {a: b}}")
    assert not KIND.prepare(plain, request).secret
    assert '"a": "b"' in (KIND.plan(plain, request).script or "")


def test_conf_templates_are_checked_when_the_file_loads(tmp_path):
    problems = problems_of(
        tmp_path, 's: {kind: dag_run, dag_id: d, conf: {x: "{{ inputs.nope }}"}}'
    )
    assert "step 's' conf x:" in problems and "nope" in problems


def test_bad_dag_id_and_prefix_are_refused_with_the_key(tmp_path):
    problems = problems_of(tmp_path, "s: {kind: dag_run, dag_id: 'rm -rf'}")
    assert "workflows.w.steps.s.dag_id" in problems
    problems = problems_of(tmp_path, "s: {kind: dag_run, dag_id: d, cluster_access: ['a b']}")
    assert "cluster_access: 'a b' is not a conf key prefix" in problems


def test_without_airflow_takes_the_dag_run_steps_needs_and_retries(tmp_path):
    step = load_step(
        tmp_path,
        """\
        first: {kind: shell, run: "true"}
        s:
          kind: dag_run
          needs: [first]
          retries: 2
          dag_id: plainhttp2ssh
          conf: {url: "{{ inputs.url }}", target: in.csv}
          without_airflow: {kind: stage_in, url: "{{ inputs.url }}", target_path: in.csv}
        """,
        inputs="{url: {type: string}}",
    )
    instead = step.instead()
    assert instead is not None and instead.kind == "stage_in"
    assert instead.needs == ["first"] and instead.retries == 2


def test_without_airflow_may_not_set_what_the_dag_run_step_gives_it(tmp_path):
    text = problems_of(
        tmp_path,
        """\
        s:
          kind: dag_run
          dag_id: plainhttp2ssh
          without_airflow: {kind: stage_in, url: "https://x.example/a", target_path: a, retries: 3}
        """,
    )
    assert "step 's' without_airflow: retries is the dag_run step's own" in text
    assert "move retries up to the dag_run step" in text


def test_without_airflow_is_checked_as_a_step_of_its_kind(tmp_path):
    text = problems_of(
        tmp_path,
        """\
        s:
          kind: dag_run
          dag_id: plainhttp2ssh
          without_airflow: {kind: stage_in, url: "ftp://x.example/a", target_path: a}
        """,
    )
    # the stage_in's own URL rule, said of the without_airflow step
    assert "step 's' without_airflow: url: only http:// and https:// URLs" in text
    with pytest.raises(CatalogFileError) as info:
        load_step(
            tmp_path,
            """\
            s:
              kind: dag_run
              dag_id: d
              without_airflow: {kind: shell, run: "true"}
            """,
        )
    [problem] = info.value.problems
    assert "without_airflow.kind: unknown step kind" in problem
    assert "use one of the step kinds: stage_in, stage_out" in problem


def test_run_id_is_derived_from_execution_step_and_attempt():
    key = RunKey("0b7c4c2e-1111-2222-3333-444455556666", "stage_in", 2)
    assert run_id_of(key) == run_id_of(RunKey(key.execution_id, "stage_in", 2))
    assert run_id_of(key) == "hpcwaas__0b7c4c2e-1111-2222-3333-444455556666__stage_in__2"
    assert run_id_of(key) != run_id_of(RunKey(key.execution_id, "stage_in", 3))


def test_the_error_of_a_failed_task_is_the_exception_it_raised():
    log = (
        "[2026-01-01] {taskinstance.py:1} ERROR - Task failed with exception\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 3, in refuse\n'
        "RuntimeError: no data at the source\n"
        "[2026-01-01] {standard_task_runner.py:1} ERROR - Failed to execute job 2\n"
    )
    assert _error_of(log) == "RuntimeError: no data at the source"
    assert _error_of("x ERROR - disk full\n") == "disk full"


def test_an_environment_without_airflow_refuses_dag_runs_saying_so(tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        environments={"hpc": {"kind": "slurm", "host": "h", "host_keys": ["h ssh-ed25519 AAAA"]}},
    )
    services = RemoteServices(settings, keystore=None)
    with pytest.raises(RemoteError) as info:
        asyncio.run(services.lookup("hpc", "airflow"))
    assert "environment 'hpc' has no airflow: setting" in str(info.value)
    assert not info.value.retryable


def test_task_log_offsets_count_from_the_end_of_airflows_header():
    running = (
        "vm\n INFO - ::group::Log message source details\n*** Found local files:\n"
        "***   * /logs/attempt=1.log\n*** Found logs served from host http://vm:8793/log\n"
        " INFO - ::endgroup::\n[t] INFO - slept 0 s\n"
    )
    ended = (
        "vm\n INFO - ::group::Log message source details\n*** Found local files:\n"
        "***   * /logs/attempt=1.log\n INFO - ::endgroup::\n[t] INFO - slept 0 s\n"
        "[t] INFO - slept 1 s\n"
    )
    first = log_body(running)
    assert first == "[t] INFO - slept 0 s\n"
    assert log_body(ended)[len(first) :] == "[t] INFO - slept 1 s\n"
    assert log_body("no header\n") == "no header\n"


class _ScriptedAirflow:
    """The few calls ``AirflowService.poll`` makes, answering from what the test set."""

    url = "http://airflow.test"

    def __init__(self) -> None:
        self.pages: Counter[str] = Counter()
        self.active = True
        self.task_state = "running"
        self.log = ""

    async def list_runs(self, dag_ids, since, states):  # type: ignore[no-untyped-def]
        return [{"dag_id": "d", "dag_run_id": "r"}] if self.active else []

    async def list_task_instances(self, dag_ids, run_ids):  # type: ignore[no-untyped-def]
        return [TaskInstance("d", "r", "refuse", -1, 1, self.task_state)]

    async def task_log(self, ti: TaskInstance) -> str:
        return self.log

    async def get_run(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {"state": "failed"}


def _follow(
    api: _ScriptedAirflow, lines: list[str]
) -> tuple[AirflowService, asyncio.Future[RemoteEnd]]:
    """A service on ``api`` following run ``r`` of DAG ``d``; its log lines go to ``lines``.

    Called inside the event loop; the test then calls ``poll`` as the poll loop would.
    """
    config = AirflowConfig(url="http://airflow.test", credentials="airflow/dls")
    service = AirflowService(config, api)  # type: ignore[arg-type]

    async def on_line(level: object, text: str, point: object) -> None:
        lines.append(text)

    done: asyncio.Future[RemoteEnd] = asyncio.get_running_loop().create_future()
    service._watches[("d", "r")] = _Watch("d", "r", "2026-01-01", on_line, "s", {}, done)
    return service, done


def test_a_task_that_logged_its_error_while_running_fails_the_step_with_it():
    api, lines = _ScriptedAirflow(), []

    async def scenario() -> RemoteEnd:
        service, done = _follow(api, lines)
        api.log = (  # the whole traceback is read while the task still runs ...
            "[t] {taskinstance.py:1} ERROR - Task failed with exception\n"
            "Traceback (most recent call last):\n"
            "RuntimeError: no data at the source\n"
        )
        await service.poll()
        api.active, api.task_state = False, "failed"  # ... then it fails, with nothing new
        await service.poll()
        return await done

    end = asyncio.run(scenario())
    assert lines[-1] == "[refuse] RuntimeError: no data at the source"
    assert end.state is StepState.FAILED
    assert end.reason == "DAG run r of d failed: task refuse: RuntimeError: no data at the source"


def test_a_running_tasks_log_is_logged_as_it_grows_not_only_at_its_end():
    api, lines = _ScriptedAirflow(), []

    async def scenario() -> list[list[str]]:
        service, _ = _follow(api, lines)
        seen = []
        for text in ("[t] INFO - copied 1 of 3\n", "[t] INFO - copied 2 of 3\n[t] INFO - cop"):
            api.log += text  # the same state ("running") at both polls
            await service.poll()
            seen.append(list(lines))
        return seen

    first, second = asyncio.run(scenario())
    assert first == ["[refuse] [t] INFO - copied 1 of 3"]
    # the second poll brings the new whole line, once; the line still being written waits
    assert second == [*first, "[refuse] [t] INFO - copied 2 of 3"]
