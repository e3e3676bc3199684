"""An eFlows4HPC TOSCA topology imported from the catalog directory and run on the test cluster.

Stage-ins (HTTP2SSH) fetch the application and its data from a local web server onto the
cluster, the PyCOMPSs job counts words (the test cluster's enqueue_compss is a stand-in that
runs the application as one Slurm job), and two stage-outs (DLSDAGStageOutData), run in
parallel after it, copy its results into the service's result store.
"""

from __future__ import annotations

import functools
import json
import pwd
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.cluster_support import Cluster
from tests.integration.test_cluster_runs import ClusterServer

WORDCOUNT_APP = """\
import collections, os, sys
source, result_dir, top = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(result_dir, exist_ok=True)
words = collections.Counter(open(source).read().split())
with open(os.path.join(result_dir, "counts.txt"), "w") as out:
    for word, count in words.most_common(top):
        out.write(f"{word} {count}\\n")
with open(os.path.join(result_dir, "run.log"), "w") as log:
    user, exported = os.environ["USER"], os.environ["result_dir"]
    log.write(f"counted {sum(words.values())} words from {source} for {user} in {exported}\\n")
print("wordcount done")
"""
TEXT = "the cat and the dog and the bird\n"

TOPOLOGY = """\
tosca_definitions_version: alien_dsl_3_0_0
metadata:
  template_name: wordcount
  template_version: 1.0.0
  template_author: hpcwaas
  hpcwaas-workflows: exec_job
imports:
  - yorc-types:1.1.0
  - dls.ansible:1.2.0-SNAPSHOT
  - eflows4hpc.env:1.0.0-SNAPSHOT
  - org.eflows4hpc.pycompss.plugin:1.0.0-SNAPSHOT
topology_template:
  inputs:
    debug: {type: boolean, required: true, default: false}
  node_templates:
    AbstractEnvironment:
      metadata: {a4c_edit_x: 10, a4c_edit_y: 20}
      type: eflows4hpc.env.nodes.AbstractEnvironment
      properties:
        cluster_login_host: "@HOST@"
    FetchApp:
      type: dls.ansible.nodes.HTTP2SSH
      properties:
        url: {concat: [{get_input: server}, "/wordcount.py"]}
        target_path: app/wordcount.py
        force: true
        dag_id: plainhttp2ssh
        debug: {get_input: debug}
    FetchData:
      type: dls.ansible.nodes.HTTP2SSH
      properties:
        url: {concat: [{get_input: server}, "/text.txt"]}
        target_path: data/text.txt
        input_name_for_target_path: data_path
        dag_id: plainhttp2ssh
    PyCOMPSJob:
      type: org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob
      properties:
        submission_params:
          num_nodes: 1
          qos: debug
          python_interpreter: python3
        application:
          command: app/wordcount.py
          arguments: ["${data_path}", "${result_dir}", 2]
        keep_environment: false
      requirements:
        - dependsOnAbstractEnvironmentExec_env:
            type_requirement: environment
            node: AbstractEnvironment
            capability: eflows4hpc.env.capabilities.ExecutionEnvironment
            relationship: tosca.relationships.DependsOn
    StageOutCounts:
      type: dls.ansible.nodes.DLSDAGStageOutData
      properties:
        source_path: {concat: [{get_input: result_dir}, "/counts.txt"]}
        mid: wordcount-metadata
        register: false
        dag_id: upload_example
    StageOutLog:
      type: dls.ansible.nodes.DLSDAGStageOutData
      properties:
        input_name_for_source_path: log_path
        dag_id: upload_example
  workflows:
    exec_job:
      inputs:
        server: {type: string, required: true}
        data_path: {type: string, default: data/text.txt}
        result_dir: {type: string, default: results}
        log_path: {type: string, default: results/run.log}
      steps:
        FetchApp_run:
          target: FetchApp
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.run}]
          on_success: [PyCOMPSJob_submitting]
        FetchData_run:
          target: FetchData
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.run}]
          on_success: [PyCOMPSJob_submitting]
        PyCOMPSJob_submitting:
          target: PyCOMPSJob
          activities: [{set_state: submitting}]
          on_success: [PyCOMPSJob_submit]
        PyCOMPSJob_submit:
          target: PyCOMPSJob
          operation_host: ORCHESTRATOR
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.submit}]
          on_success: [PyCOMPSJob_run]
        PyCOMPSJob_run:
          target: PyCOMPSJob
          operation_host: ORCHESTRATOR
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.run}]
          on_success: [PyCOMPSJob_executed]
        PyCOMPSJob_executed:
          target: PyCOMPSJob
          activities: [{set_state: executed}]
          on_success: [StageOutCounts_run, StageOutLog_run]
        StageOutCounts_run:
          target: StageOutCounts
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.run}]
        StageOutLog_run:
          target: StageOutLog
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.run}]
"""


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    """A plain web server on 127.0.0.1 serving the application and its data."""
    root = tmp_path / "web"
    root.mkdir()
    (root / "wordcount.py").write_text(WORDCOUNT_APP)
    (root / "text.txt").write_text(TEXT)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def tosca_hpc(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster
) -> Iterator[ClusterServer]:
    setup = ClusterServer(tmp_path, cluster)
    (tmp_path / "catalog" / "wordcount.yaml").write_text(TOPOLOGY.replace("@HOST@", cluster.host))
    setup.server.start()
    yield setup
    setup.server.stop()


def test_tosca_topology_with_stage_in_pycompss_and_parallel_stage_outs_succeeds(
    tosca_hpc: ClusterServer, cluster: Cluster, web: str, tmp_path: Path
) -> None:
    token = tosca_hpc.server.token("alice")
    listed = tosca_hpc.waas(token, "-o", "json", "workflows", "list")
    assert listed.returncode == 0, listed.stderr
    assert "wordcount@cluster@exec_job" in {w["id"] for w in json.loads(listed.stdout)}

    made = tosca_hpc.waas(token, "-o", "json", "ssh_keys", "key-gen")
    key = json.loads(made.stdout)
    cluster.clear_authorized("hpcuser1")
    cluster.authorize("hpcuser1", key["public_key"])
    run = tosca_hpc.waas(
        token,
        "workflows",
        "trigger",
        "-f",
        "-i",
        "user_id=hpcuser1",
        "-i",
        f"vault_id={key['id']}",
        "-i",
        f"server={web}",
        "wordcount@cluster@exec_job",
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    match = re.search(r"Workflow triggered with execution ID: (\S+)", run.stdout)
    assert match, run.stdout
    execution_id = match.group(1)
    status = tosca_hpc.waas(token, "-o", "json", "executions", "status", execution_id)
    assert json.loads(status.stdout)["status"] == "SUCCEEDED"
    logs = tosca_hpc.waas(token, "executions", "logs", execution_id).stdout
    assert "wordcount done" in logs

    with tosca_hpc.server.client(token) as client:
        listing = client.get(f"/executions/{execution_id}/outputs")
        assert listing.status_code == 200, listing.text
        names = {o["name"] for o in listing.json()["outputs"]}
        assert {"StageOutCounts", "StageOutLog"} <= names
        counts = client.get(f"/executions/{execution_id}/outputs/StageOutCounts")
        assert counts.status_code == 200, counts.text
        assert counts.text == "the 3\nand 2\n"
        log = client.get(f"/executions/{execution_id}/outputs/StageOutLog")
        assert "counted 8 words from data/text.txt for hpcuser1 in results" in log.text
        listed_outputs = {o["name"]: o for o in listing.json()["outputs"]}
        assert listed_outputs["StageOutCounts"]["metadata"]["mid"] == "wordcount-metadata"

    target = tmp_path / "downloads"
    fetched = tosca_hpc.waas(
        token, "executions", "outputs", execution_id, "--download", str(target)
    )
    assert fetched.returncode == 0, fetched.stderr
    contents = {Path(path).read_text() for path in fetched.stdout.split()}
    assert "the 3\nand 2\n" in contents


JOB_ONLY = """\
tosca_definitions_version: alien_dsl_3_0_0
metadata:
  template_name: jobonly
  hpcwaas-workflows: exec_job
topology_template:
  node_templates:
    Env:
      type: eflows4hpc.env.nodes.AbstractEnvironment
      properties: {cluster_login_host: "@HOST@"}
    Job:
      type: org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob
      properties:
        environment: {endpoint: "@HOST@", user_name: nobody}
        submission_params: {num_nodes: 1, qos: debug}
        application:
          command: "@APP@"
          arguments: ["${data_path}/in.txt", 7]
      requirements:
        - env: {node: Env}
  workflows:
    exec_job:
      inputs:
        data_path: {type: string, default: /scratch/default}
        user: {type: string, required: false}
      steps:
        Job_submit:
          target: Job
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.submit}]
          on_success: [Job_run]
        Job_run:
          target: Job
          activities: [{call_operation: tosca.interfaces.node.lifecycle.Runnable.run}]
"""
SHOW_APP = """\
import os, sys
print("args", " ".join(sys.argv[1:]), "env", os.environ["data_path"], "as", os.environ["USER"])
"""


def test_tosca_pycompss_job_runs_with_inputs_expanded_as_the_user_input_account(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster
) -> None:
    home = Path(pwd.getpwnam("hpcuser2").pw_dir)
    written = cluster.run_as("hpcuser2", f"cat > show.py <<'EOF'\n{SHOW_APP}EOF")
    assert written.returncode == 0, written.stderr
    setup = ClusterServer(tmp_path, cluster)
    topology = JOB_ONLY.replace("@HOST@", cluster.host).replace("@APP@", str(home / "show.py"))
    (tmp_path / "catalog" / "jobonly.yaml").write_text(topology)
    setup.server.start()
    try:
        token = setup.server.token("bob")
        key = json.loads(setup.waas(token, "-o", "json", "ssh_keys", "key-gen").stdout)
        cluster.clear_authorized("hpcuser2")
        cluster.authorize("hpcuser2", key["public_key"])
        # the plugin's order: the input `user` wins over the node's environment.user_name
        run = setup.waas(
            token,
            "workflows",
            "trigger",
            "-f",
            "-i",
            "user=hpcuser2",
            "-i",
            f"vault_id={key['id']}",
            "-i",
            "data_path=/scratch/bob",
            "jobonly@cluster@exec_job",
        )
        assert run.returncode == 0, run.stdout + run.stderr
        match = re.search(r"Workflow triggered with execution ID: (\S+)", run.stdout)
        assert match, run.stdout
        logs = setup.waas(token, "executions", "logs", match.group(1)).stdout
        assert "args /scratch/bob/in.txt 7 env /scratch/bob as hpcuser2" in logs
    finally:
        setup.server.stop()
