"""Environments for tests that register cluster identities without reaching a cluster.

``PAPER_CLUSTER`` is a `slurm` environment on 127.0.0.1:2222 whose host key is not the
test cluster's: nothing connects to it (a connection would be refused as untrusted).
``LOCAL_AND_PAPER_CLUSTER`` is the pair a server gets through ``HPCWAAS_ENVIRONMENTS``.
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
