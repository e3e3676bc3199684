"""TOSCA import of the image nodes: ImageCreation an image_build step, DLSDAGImageTransfer an
image_transfer step of the build it depends on (when a workflow calls them)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.tosca_topologies import REQUIRES_ENV, convert, problems, run_steps, topology

pytestmark = pytest.mark.images

BUILD = {
    "type": "imagecreation.ansible.nodes.ImageCreation",
    "properties": {
        "service_url": "https://images.example.org/image_creation",
        "insecure_tls": False,
        "username": {"get_secret": ["/secret/data/services_secrets/image_creation", "data=user"]},
        "password": "not-read",
        "machine": {"container_engine": "singularity", "platform": "linux/amd64",
                    "architecture": "sandybridge", "mpi": "openmpi@4"},
        "workflow": "rom_pillar_I",
        "step_id": "reduce_order_model",
        "force": False,
    },
    "requirements": REQUIRES_ENV,
}  # fmt: skip
MOVE = {
    "type": "dls.ansible.nodes.DLSDAGImageTransfer",
    "properties": {
        "image_builder_url": "https://images.example.org/image_creation",
        "image_builder_vault_secret_path": "/services_secrets/image_creation",
        "image_id": "not_used",
        "target_path": "/home/shared/images",
        "dag_id": "transfer_image",
    },
    "requirements": [
        {"dependsOnBuild": {"type_requirement": "dependency", "node": "Build"}},
        *REQUIRES_ENV,
    ],
}


def _images(**move: Any) -> dict[str, Any]:
    document = topology()
    nodes = document["topology_template"]["node_templates"]
    nodes["Build"] = BUILD
    nodes["Move"] = {**MOVE, **move}
    document["topology_template"]["workflows"]["run"]["steps"] = run_steps("Build", "Move", "Job")
    return document


def test_image_nodes_called_by_a_workflow_become_build_and_transfer_steps(tmp_path):
    steps = convert(tmp_path, _images())["workflows"]["run"]["steps"]
    assert steps["Build"] == {
        "kind": "image_build",
        "machine": {
            "platform": "linux/amd64",
            "architecture": "sandybridge",
            "container_engine": "singularity",
            "mpi": "openmpi@4",
        },
        "workflow": "rom_pillar_I",
        "step_id": "reduce_order_model",
        "service_url": "https://images.example.org/image_creation",
        "force": False,
    }  # the node's username and password are not read: the environment's account is used
    assert steps["Move"] == {
        "kind": "image_transfer",
        "url": "{{ steps.Build.outputs.download_url }}",
        "target_path": "/home/shared/images",
        "vault_path": "/services_secrets/image_creation",
        "needs": ["Build"],
    }


def test_a_transfer_that_depends_on_no_build_is_refused_naming_the_fix(tmp_path):
    found = "\n".join(problems(tmp_path, _images(requirements=REQUIRES_ENV)))
    assert "node 'Move' (dls.ansible.nodes.DLSDAGImageTransfer) depends on 0 ImageCreation" in found
    assert "one requirement (dependency) on the ImageCreation node" in found
