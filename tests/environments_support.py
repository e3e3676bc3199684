"""Environments for tests that register cluster identities without reaching a cluster.

``PAPER_CLUSTER`` is a `slurm` environment on 127.0.0.1:2222 whose host key is not the
test cluster's: nothing connects to it (a connection would be refused as untrusted).
``LOCAL_AND_PAPER_CLUSTER`` is the pair a server gets through ``HPCWAAS_ENVIRONMENTS``.
``MIXED_APPLICATION`` runs a step on `local`, then one on the environment `hpc`, for which
``unreachable_cluster(port)`` is a `slurm` environment nobody answers on.
"""

from __future__ import annotations

from typing import Any

UNTRUSTED_HOST_KEY = (
    "[127.0.0.1]:2222 ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
)
PAPER_CLUSTER: dict[str, Any] = {
    "kind": "slurm",
    "name": "Test cluster",
    "host": "127.0.0.1",
    "port": 2222,
    "host_keys": [UNTRUSTED_HOST_KEY],
}
LOCAL_AND_PAPER_CLUSTER: dict[str, Any] = {
    "local": {"kind": "local", "name": "Local host"},
    "cluster": PAPER_CLUSTER,
}
MIXED_APPLICATION = """\
application: mixed
environments: [local]
expose: [run]
workflows:
  run:
    steps:
      prepare: {kind: shell, run: "true"}
      solve: {kind: slurm, script: "srun ./solve", environment: hpc, needs: [prepare]}
"""


def unreachable_cluster(port: int) -> dict[str, Any]:
    """A `slurm` environment on a loopback port nothing listens on."""
    key = UNTRUSTED_HOST_KEY.split(" ", 1)[1]
    host_key = f"[127.0.0.1]:{port} {key}"
    return {"kind": "slurm", "host": "127.0.0.1", "port": port, "host_keys": [host_key]}
