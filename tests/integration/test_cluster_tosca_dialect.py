"""A topology in the PyCOMPSs plugin's dialect, run through enqueue_compss on the test cluster.

Inputs in ``extra_compss_opts`` and ``qos``, ``$name`` inside the command and the arguments,
an argument holding several words, shell quotes in ``container_opts``: the job must receive
exactly the words the author meant, each input value inside its own word. The test cluster's
enqueue_compss is a stand-in (tests/cluster/enqueue_compss) that runs the application as one
Slurm job with its arguments as given.
"""

from __future__ import annotations

import json
import pwd
import re
from pathlib import Path

from tests.cluster_support import Cluster
from tests.integration.test_cluster_runs import ClusterServer

TOPOLOGY = """\
tosca_definitions_version: alien_dsl_3_0_0
metadata:
  template_name: dialect
  hpcwaas-workflows: exec_job
imports:
  - eflows4hpc.env:1.1.0
  - org.eflows4hpc.pycompss.plugin:1.1.0
topology_template:
  node_templates:
    Env:
      type: eflows4hpc.env.nodes.AbstractEnvironment
      properties: {cluster_login_host: "@HOST@"}
    Job:
      type: org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob
      properties:
        submission_params:
          qos: "${qos}"
          num_nodes: 1
          python_interpreter: ""
          extra_compss_opts: "--project_name=$project --log_level=$level --exec_time=${minutes}"
        application:
          container_opts: {container_opts: "\\"-e\\""}
          command: "$app_dir/show.py"
          arguments:
            - "--label ${label} --count 3"
            - "${out_dir}/result.txt"
      requirements:
        - dependsOnEnvExec_env: {type_requirement: environment, node: Env}
  workflows:
    exec_job:
      inputs:
        user_id: {type: string, required: true}
        vault_id: {type: string, required: true}
        app_dir: {type: string, required: true}
        label: {type: string, required: true}
        out_dir: {type: string, default: /scratch/out}
        project: {type: string, default: bsc19}
        level: {type: string, default: "off"}
        minutes: {type: integer, default: 5}
        qos: {type: string, default: debug}
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
import json, os, sys
print("argv", json.dumps(sys.argv[1:]), "label", json.dumps(os.environ["label"]))
"""


def test_dialect_topology_job_receives_exactly_the_intended_words(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster
) -> None:
    home = Path(pwd.getpwnam("hpcuser2").pw_dir)
    written = cluster.run_as("hpcuser2", f"cat > show.py <<'EOF'\n{SHOW_APP}EOF")
    assert written.returncode == 0, written.stderr
    setup = ClusterServer(tmp_path, cluster)
    (tmp_path / "catalog" / "dialect.yaml").write_text(TOPOLOGY.replace("@HOST@", cluster.host))
    setup.server.start()
    try:
        token = setup.server.token("bob")
        key = json.loads(setup.waas(token, "-o", "json", "ssh_keys", "key-gen").stdout)
        cluster.clear_authorized("hpcuser2")
        cluster.authorize("hpcuser2", key["public_key"])
        inputs = ["-i", "user_id=hpcuser2", "-i", f"vault_id={key['id']}"]
        inputs += ["-i", f"app_dir={home}", "-i", "label=twin"]
        workflow = "dialect@cluster@exec_job"

        plan = setup.waas(token, "wf", "trigger", "--dry-run", *inputs, workflow)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        for word in ("--qos=debug", "--project_name=bsc19", "--log_level=off"):
            assert word in plan.stdout
        assert "--exec_time=5" in plan.stdout and "--container_opts=-e" in plan.stdout
        assert f"{home}/show.py --label twin --count 3 /scratch/out/result.txt" in plan.stdout

        hostile = setup.waas(
            token, "wf", "trigger", "--dry-run", *inputs, "-i", "project=x --queue=other", workflow
        )
        assert hostile.returncode == 1, hostile.stdout
        # the value stays inside its word: one option, refused, never two
        assert "'--project_name=x --queue=other' is not an enqueue_compss option" in hostile.stdout
        assert "command:" not in hostile.stdout

        run = setup.waas(token, "workflows", "trigger", "-f", *inputs, workflow, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        match = re.search(r"Workflow triggered with execution ID: (\S+)", run.stdout)
        assert match, run.stdout
        logs = setup.waas(token, "executions", "logs", match.group(1)).stdout
        words = ["--label", "twin", "--count", "3", "/scratch/out/result.txt"]
        assert f'argv {json.dumps(words)} label "twin"' in logs
    finally:
        setup.server.stop()
