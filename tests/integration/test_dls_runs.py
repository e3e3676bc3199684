"""dag_run steps on a real Apache Airflow (tests/airflow_support.py) and the loopback cluster.

The hpcwaas server (a subprocess) keeps keys in a real OpenBao (tests/openbao_support.py,
the Vault API) with its own AppRole; the Airflow's DAGs (dags/dls_transfers.py, tests/dags/)
log in to that same OpenBao with the DLS's AppRole (read on ssh-credentials only), read the
user's private key as the Data Logistics Service does, and copy files onto the cluster over
SSH as the user's account.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.airflow_support import Airflow
from tests.cluster_support import Cluster
from tests.conftest import LiveServer, free_port, wait_for_status
from tests.http_files import HttpFiles
from tests.integration.test_cluster_runs import BIN, _execution_id, _new_key
from tests.openbao_support import DLS_POLICY, HPCWAAS_POLICY, OpenBao

LOGIN = "hpcuser1"
CREDENTIALS = "services/airflow"
# hpcwaas's AppRole also keeps the Airflow's credentials (hpcwaas-api secrets put, then read).
CREDENTIALS_POLICY = """\
path "secret/data/services/*" {
  capabilities = ["create", "update", "read"]
}
"""

WORKFLOWS = """
application: dls
environments: [cluster]
expose: [copy, failing, slow, minimal, quick]
workflows:
  copy:
    inputs:
      url: {type: string}
      target_path: {type: string}
    steps:
      fetch:
        kind: dag_run
        dag_id: plainhttp2ssh
        conf:
          url: "{{ inputs.url }}"
          target: "{{ inputs.target_path }}"
          force: true
  failing:
    steps:
      refuse:
        kind: dag_run
        dag_id: hpcwaas_test_fail
        conf: {reason: "no data at the source"}
  slow:
    inputs:
      seconds: {type: integer, default: 40}
    steps:
      wait:
        kind: dag_run
        dag_id: hpcwaas_test_sleep
        conf: {seconds: "{{ inputs.seconds }}"}
        cluster_access: []
  minimal:
    inputs:
      app_url: {type: string}
    steps:
      stage_in:
        kind: dag_run
        dag_id: plainhttp2ssh
        conf:
          url: "{{ inputs.app_url }}"
          target: ".hpcwaas/executions/{{ execution.id }}/app.py"
      compute:
        kind: pycompss
        needs: [stage_in]
        app: app.py
        arguments: [result.txt]
        num_nodes: 1
      stage_out:
        kind: dag_run
        needs: [compute]
        dag_id: ssh2ssh
        cluster_access: [source_, target_]
        conf:
          source_path: ".hpcwaas/executions/{{ execution.id }}/result.txt"
          target_path: "results/{{ execution.id }}/result.txt"
  quick:
    inputs:
      value: {type: string, default: x}
    steps:
      echo:
        kind: dag_run
        dag_id: hpcwaas_test_quick
        cluster_access: []
        conf: {value: "{{ inputs.value }}"}
"""

# A topology shaped like the registry's minimal workflow: its data logistics nodes run as
# DAG runs on the environment's Airflow (HTTP2SSH: plainhttp2ssh, SSH2SSH: ssh2ssh).
TOPOLOGY = """\
tosca_definitions_version: alien_dsl_3_0_0
metadata:
  template_name: minimal_dls
  hpcwaas-workflows: exec_job
topology_template:
  node_templates:
    Env:
      type: eflows4hpc.env.nodes.AbstractEnvironment
      properties: {cluster_login_host: "@HOST@"}
    FetchApp:
      type: dls.ansible.nodes.HTTP2SSH
      properties:
        url: {get_input: app_url}
        target_path: {concat: [{get_input: work_dir}, "/app.py"]}
        dag_id: plainhttp2ssh
    Job:
      type: org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob
      properties:
        submission_params: {num_nodes: 1, python_interpreter: python3}
        application:
          command: "${work_dir}/app.py"
          arguments: ["${work_dir}/result.txt"]
      requirements:
        - environment: {type_requirement: environment, node: Env}
    Publish:
      type: dls.ansible.nodes.SSH2SSH
      properties:
        source_path: {concat: [{get_input: work_dir}, "/result.txt"]}
        input_name_for_target_path: published
        dag_id: ssh2ssh
  workflows:
    exec_job:
      inputs:
        app_url: {type: string}
        work_dir: {type: string}
        published: {type: string}
      steps:
        FetchApp_run:
          target: FetchApp
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.run}]
          on_success: [Job_submit]
        Job_submit:
          target: Job
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.submit}]
          on_success: [Publish_run]
        Publish_run:
          target: Publish
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.run}]
"""

APP = b"""import sys
with open(sys.argv[1], "w") as out:
    out.write("computed by pycompss\\n")
print("app wrote", sys.argv[1])
"""


class DlsSetup:
    """An hpcwaas server on the Vault, whose cluster environment has the test Airflow."""

    def __init__(
        self,
        tmp_path: Path,
        cluster: Cluster,
        airflow: Airflow,
        bao: OpenBao,
        extra_args: tuple[str, ...] = (),
    ):
        self.cluster, self.airflow, self.bao = cluster, airflow, bao
        catalog = tmp_path / "catalog"
        catalog.mkdir()
        (catalog / "dls.yaml").write_text(WORKFLOWS)
        (catalog / "minimal_dls.yaml").write_text(TOPOLOGY.replace("@HOST@", cluster.host))
        bao.policy("hpcwaas", HPCWAAS_POLICY + CREDENTIALS_POLICY)
        bao.policy("dls", DLS_POLICY)
        dls_role, dls_secret = bao.approle("dls", ["dls"])
        config = {
            "vault_config": bao.hpcwaas_config(),
            "catalog_dirs": [str(catalog)],
            "environments": {
                "cluster": {
                    "kind": "slurm",
                    "host": cluster.host,
                    "port": cluster.port,
                    "host_keys": [cluster.known_hosts],
                    "poll_interval": 1,
                    "airflow": {
                        "url": airflow.url,
                        "credentials": CREDENTIALS,
                        "poll_interval": 1,
                    },
                }
            },
        }
        path = tmp_path / "hpcwaas.yml"
        path.write_text(yaml.safe_dump(config))
        self.server = LiveServer(
            tmp_path / "data", free_port(), extra_args=["--config", str(path), *extra_args]
        )
        self.home = tmp_path / "home"
        self.home.mkdir()
        # What the DLS has: the Vault (its own AppRole) and the cluster's host key.
        address = httpx.URL(bao.address)
        airflow.set_connection(
            "my_vault",
            conn_type="vault",
            host=address.host,
            port=address.port,
            login=dls_role,
            password=dls_secret,
            extra=json.dumps({"auth_type": "approle", "kv_engine_version": 2}),
        )
        airflow.set_variable("ssh_known_hosts", cluster.known_hosts)

    def start(self) -> None:
        for key, value in (
            ("username", self.airflow.username),
            ("password", self.airflow.password),
        ):
            put = self.server.admin("secrets", "put", CREDENTIALS, key, input_text=value)
            assert put.returncode == 0, put.stderr
        self.server.start()

    def waas(self, token: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(self.home)}
        env.pop("HW_ACCESS_TOKEN", None)
        return subprocess.run(
            [str(BIN / "waas"), "--api_url", self.server.url, f"-t={token}", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    def trigger(self, token: str, key: str, workflow: str, *inputs: str) -> str:
        args = ["-i", f"user_id={LOGIN}", "-i", f"vault_id={key}"]
        for value in inputs:
            args += ["-i", value]
        run = self.waas(token, "workflows", "trigger", *args, f"dls@cluster@{workflow}")
        assert run.returncode == 0, run.stdout + run.stderr
        return _execution_id(run.stdout)


@pytest.fixture
def dls(
    tmp_path: Path,
    cluster: Cluster,
    cluster_jobs_cleanup: Cluster,
    airflow: Airflow,
    openbao: OpenBao,
) -> Iterator[DlsSetup]:
    setup = DlsSetup(tmp_path, cluster, airflow, openbao)
    setup.start()
    yield setup
    setup.server.stop()


def _logs(client: httpx.Client, execution_id: str) -> str:
    answer = client.get(f"/executions/{execution_id}/logs")
    assert answer.status_code == 200, answer.text
    return json.dumps(answer.json())


def _runs_of(airflow: Airflow, dag_id: str, execution_id: str) -> list[dict[str, Any]]:
    return [r for r in airflow.runs(dag_id) if execution_id in r["dag_run_id"]]


def _wait_run_state(
    airflow: Airflow, dag_id: str, execution_id: str, states: set[str], timeout: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = _runs_of(airflow, dag_id, execution_id)
        if runs and runs[0]["state"] in states:
            return runs[0]
        time.sleep(0.5)
    raise AssertionError(f"no run of {dag_id} for {execution_id} in {states}: {runs}")


def test_dag_run_step_copies_a_file_onto_the_cluster_with_the_users_vault_key(
    dls: DlsSetup, cluster: Cluster, http_files: HttpFiles
) -> None:
    url = http_files.add("/datasets/input.txt", b"dataset line 1\ndataset line 2\n")
    token = dls.server.token("alice")
    key = _new_key(dls, cluster, token, LOGIN)  # type: ignore[arg-type]  # has waas()
    execution_id = dls.trigger(token, key, "copy", f"url={url}", "target_path=dls/input.txt")
    with dls.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=180)
        logs = _logs(client, execution_id)
    assert body["status"] == "SUCCEEDED", logs
    copied = cluster.run_as(LOGIN, "cat dls/input.txt; stat -c %U dls/input.txt")
    assert copied.stdout == f"dataset line 1\ndataset line 2\n{LOGIN}\n", copied.stderr
    # the run's task log arrived as the step's log entries
    assert "[stream_upload]" in logs and "Copied 30 bytes" in logs, logs
    [run] = _runs_of(dls.airflow, "plainhttp2ssh", execution_id)
    assert run["state"] == "success"
    assert run["conf"]["login"] == LOGIN and run["conf"]["vault_id"] == key
    assert run["conf"]["port"] == cluster.port  # JSON data, typed as the DAG's params want


def test_failing_dag_run_fails_the_step_with_the_runs_error(
    dls: DlsSetup, cluster: Cluster
) -> None:
    token = dls.server.token("alice")
    key = _new_key(dls, cluster, token, LOGIN)  # type: ignore[arg-type]  # has waas()
    execution_id = dls.trigger(token, key, "failing")
    with dls.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=180)
        logs = _logs(client, execution_id)
    assert body["status"] == "FAILED", logs
    [run] = _runs_of(dls.airflow, "hpcwaas_test_fail", execution_id)
    assert run["state"] == "failed"
    # the step's failure says which task failed and why, as the task's log said it
    assert "task refuse: RuntimeError: no data at the source" in logs, logs
    assert "[refuse]" in logs and "about to fail" in logs


def _task_states(airflow: Airflow, dag_id: str, run_id: str) -> dict[str, str | None]:
    answer = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    assert answer.status_code == 200, answer.text
    return {ti["task_id"]: ti["state"] for ti in answer.json()["task_instances"]}


def _wait_task_running(airflow: Airflow, run_id: str, task: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if _task_states(airflow, "hpcwaas_test_sleep", run_id).get(task) == "running":
            return
        time.sleep(0.5)
    raise AssertionError(f"task {task} of {run_id} never ran")


def test_cancel_sets_the_dag_run_failed_and_stops_its_running_task(
    dls: DlsSetup, cluster: Cluster
) -> None:
    token = dls.server.token("alice")
    key = _new_key(dls, cluster, token, LOGIN)  # type: ignore[arg-type]  # has waas()
    execution_id = dls.trigger(token, key, "slow", "seconds=120")
    run = _wait_run_state(dls.airflow, "hpcwaas_test_sleep", execution_id, {"running"})
    _wait_task_running(dls.airflow, run["dag_run_id"], "wait")
    cancel = dls.waas(token, "executions", "cancel", execution_id)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    with dls.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"CANCELLED", "FAILED"}, timeout=60)
        logs = _logs(client, execution_id)  # says why, if the run could not be stopped
    assert body["status"] == "CANCELLED"
    run_now = _runs_of(dls.airflow, "hpcwaas_test_sleep", execution_id)[0]
    assert run_now["state"] == "failed", logs
    deadline = time.monotonic() + 60
    while _task_states(dls.airflow, "hpcwaas_test_sleep", run["dag_run_id"])["wait"] == "running":
        assert time.monotonic() < deadline, "the running task was not stopped"
        time.sleep(0.5)


def test_restart_of_hpcwaas_mid_run_reattaches_without_a_second_run(
    dls: DlsSetup, cluster: Cluster
) -> None:
    token = dls.server.token("alice")
    key = _new_key(dls, cluster, token, LOGIN)  # type: ignore[arg-type]  # has waas()
    execution_id = dls.trigger(token, key, "slow", "seconds=25")
    run = _wait_run_state(dls.airflow, "hpcwaas_test_sleep", execution_id, {"running"})
    _wait_task_running(dls.airflow, run["dag_run_id"], "wait")
    time.sleep(2)  # the first task's log is in
    process = dls.server.process
    assert process is not None
    process.kill()  # a crash: nothing is detached cleanly
    process.wait(10)
    dls.server.start()
    with dls.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=180)
        logs = _logs(client, execution_id)
    assert body["status"] == "SUCCEEDED", logs
    runs = _runs_of(dls.airflow, "hpcwaas_test_sleep", execution_id)
    assert [r["dag_run_id"] for r in runs] == [run["dag_run_id"]]
    assert f"re-attached to airflow run {run['dag_run_id']}" in logs
    # the task logs read before the crash are not repeated, nor those after it lost
    assert logs.count("first task done") == 1, logs
    assert logs.count("slept 24 s") == 1, logs


def test_an_airflow_unreachable_for_a_while_is_followed_again_when_it_answers(
    dls: DlsSetup, cluster: Cluster
) -> None:
    token = dls.server.token("alice")
    key = _new_key(dls, cluster, token, LOGIN)  # type: ignore[arg-type]  # has waas()
    execution_id = dls.trigger(token, key, "slow", "seconds=15")
    run = _wait_run_state(dls.airflow, "hpcwaas_test_sleep", execution_id, {"running"})
    dls.airflow.stop_webserver()
    try:
        time.sleep(5)  # a few polls fail meanwhile
        with dls.server.client(token) as client:
            assert client.get(f"/executions/{execution_id}").json()["status"] == "RUNNING"
    finally:
        dls.airflow.start_webserver()
    with dls.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=180)
        logs = _logs(client, execution_id)
    assert body["status"] == "SUCCEEDED", logs
    assert [r["dag_run_id"] for r in _runs_of(dls.airflow, "hpcwaas_test_sleep", execution_id)] == [
        run["dag_run_id"]
    ]
    assert logs.count("slept 14 s") == 1, logs


def test_minimal_workflow_stages_in_by_dag_computes_with_pycompss_and_stages_out_by_dag(
    dls: DlsSetup, cluster: Cluster, http_files: HttpFiles
) -> None:
    url = http_files.add("/apps/app.py", APP)
    token = dls.server.token("alice")
    key = _new_key(dls, cluster, token, LOGIN)  # type: ignore[arg-type]  # has waas()
    execution_id = dls.trigger(token, key, "minimal", f"app_url={url}")
    with dls.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=300)
        logs = _logs(client, execution_id)
    assert body["status"] == "SUCCEEDED", logs
    staged_out = cluster.run_as(LOGIN, f"cat results/{execution_id}/result.txt")
    assert staged_out.stdout == "computed by pycompss\n", staged_out.stderr
    [out] = _runs_of(dls.airflow, "ssh2ssh", execution_id)
    assert out["conf"]["source_login"] == out["conf"]["target_login"] == LOGIN


def test_an_imported_topologys_dls_nodes_run_as_dag_runs_of_the_environments_airflow(
    dls: DlsSetup, cluster: Cluster, http_files: HttpFiles
) -> None:
    url = http_files.add("/apps/tosca_app.py", APP)
    token = dls.server.token("alice")
    key = _new_key(dls, cluster, token, LOGIN)  # type: ignore[arg-type]  # has waas()
    home = cluster.run_as(LOGIN, "echo $HOME").stdout.strip()
    work = f"{home}/tosca-{time.monotonic_ns()}"
    run = dls.waas(
        token,
        "workflows",
        "trigger",
        *("-i", f"user_id={LOGIN}", "-i", f"vault_id={key}", "-i", f"app_url={url}"),
        *("-i", f"work_dir={work}", "-i", f"published={work}/published.txt"),
        "minimal_dls@cluster@exec_job",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    execution_id = _execution_id(run.stdout)
    with dls.server.client(token) as client:
        body = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"}, timeout=300)
        logs = _logs(client, execution_id)
    assert body["status"] == "SUCCEEDED", logs
    published = cluster.run_as(LOGIN, f"cat {work}/published.txt")
    assert published.stdout == "computed by pycompss\n", published.stderr
    [fetch] = _runs_of(dls.airflow, "plainhttp2ssh", execution_id)
    assert fetch["conf"]["url"] == url and fetch["conf"]["target"] == f"{work}/app.py"
    [publish] = _runs_of(dls.airflow, "ssh2ssh", execution_id)
    assert publish["conf"]["source_path"] == f"{work}/result.txt"
    assert publish["conf"]["target_path"] == f"{work}/published.txt"
    assert publish["conf"]["source_login"] == publish["conf"]["target_login"] == LOGIN
