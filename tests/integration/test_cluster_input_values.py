"""Property: over SSH on the loopback cluster, any input value reaches the step exactly.

The same property as test_input_values_property.py (``printf '%s'`` of each value into a
file, read back as an output; no marker file created by a smuggled command), on a `slurm`
environment whose shell steps run through SSH as the user's cluster account. Fewer
examples: each execution costs SSH round trips.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.cluster_support import Cluster
from tests.integration.test_cluster_runs import ClusterServer
from tests.integration.test_input_values_property import MAX_INPUT_BYTES, NAMES, values
from tests.integration.test_secret_hygiene import _body_lines, _private_keys

EXAMPLES = int(os.environ.get("HPCWAAS_CLUSTER_PROPERTY_EXAMPLES", "5"))
# Markers live where the cluster account can write: a smuggled `touch` would succeed there.
MARKERS = Path("/tmp/hpcwaas-cluster-quoting-markers")

CATALOG = """
application: quoting
environments: [cluster]
expose: [echo]
workflows:
  echo:
    inputs:
{inputs}
    steps:
      write:
        kind: shell
        run: |
{lines}
    outputs:
{outputs}
""".format(
    inputs="\n".join(f'      {n}: {{type: string, default: ""}}' for n in NAMES),
    lines="\n".join(f"          printf '%s' {{{{ inputs.{n} }}}} > {n}.txt" for n in NAMES),
    outputs="\n".join(f"      {n}: {{step: write, path: {n}.txt}}" for n in NAMES),
)


def test_any_input_value_reaches_a_step_over_ssh_exactly(
    tmp_path: Path, cluster: Cluster, cluster_jobs_cleanup: Cluster
) -> None:
    setup = ClusterServer(tmp_path, cluster)
    (tmp_path / "catalog" / "quoting.yaml").write_text(CATALOG)
    setup.server.start()
    MARKERS.mkdir(parents=True, exist_ok=True)
    MARKERS.chmod(0o1777)
    try:
        token = setup.server.token("quoter")
        made = setup.waas(token, "-o", "json", "ssh_keys", "key-gen")
        assert made.returncode == 0, made.stderr
        key = json.loads(made.stdout)
        cluster.clear_authorized("hpcuser1")
        cluster.authorize("hpcuser1", key["public_key"])
        identity = {"user_id": "hpcuser1", "vault_id": key["id"]}

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(batch=st.lists(values(MARKERS), min_size=len(NAMES), max_size=len(NAMES)))
        @example(
            batch=[("'" * MAX_INPUT_BYTES, []), ("$(id)`id`;&&\n", []), ("-n", []), ("~*", [])]
        )
        def check(batch: list[tuple[str, list[Path]]]) -> None:
            inputs = {n: v for n, (v, _) in zip(NAMES, batch, strict=True)}
            with setup.server.client(token) as api:
                answer = api.post(
                    "/workflows/quoting@cluster@echo", json={"inputs": {**inputs, **identity}}
                )
                assert answer.status_code == 201, answer.text
                execution_id = answer.headers["location"].rsplit("/", 1)[1]
                from tests.conftest import wait_for_status

                body = wait_for_status(
                    api, execution_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=120
                )
            assert body["status"] == "SUCCEEDED", body
            outputs = body["outputs"]
            assert isinstance(outputs, dict)
            for name, value in inputs.items():
                assert outputs[name] == value, f"input {name} came back changed"
            for _, markers in batch:
                for marker in markers:
                    assert not marker.exists(), f"a value ran a command: {marker} exists"

        check()
        # The key was loaded into the SSH client for every run: the log must not hold it.
        pem = asyncio.run(_private_keys(setup.server, [key["id"]]))[0]
        log = setup.server.log_path.read_text(errors="replace")
        for line in _body_lines(pem):
            assert line not in log, "a line of the private key reached the server log"
    finally:
        setup.server.stop()
