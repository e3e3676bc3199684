"""The container image of a PyCOMPSJob: the one its ``img_transfer`` requirement names.

In the registry's image topologies, a ``DLSDAGImageTransfer`` node moves the image an
``ImageCreation`` node built onto the cluster, and the PyCOMPSs job requires it with
``type_requirement: img_transfer``. The PyCOMPSs Yorc plugin read that requirement after
every property (``getContainerImageFromRequirement``, last in ``resolveJobParams``): the
transferred image wins over the job's ``container_image`` and a ``--container_image=`` of its
``extra_compss_opts``. Here the job's ``container_image`` is the transfer step's output
``image_path``: ``{{ deployment.outputs.<node>.image_path }}`` when the node is a step of the
application's deployment (``run_in_standard_mode: true``, called by no workflow), else
``{{ steps.<node>.outputs.image_path }}`` when the job's workflow runs it. A job whose
transfer node runs in neither is not offered (``fates.pending_reasons`` says why).
"""

from __future__ import annotations

from hpcwaas.catalog.tosca.fates import IMAGE_REQUIREMENT, image_source
from hpcwaas.catalog.tosca.functions import Template
from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.tosca.pycompss import PycompssProperty
from hpcwaas.catalog.tosca.topology import NodeTemplate, Topology

IMAGE_TRANSFER_TYPE = "dls.ansible.nodes.DLSDAGImageTransfer"


def moved_image(transfer: str, *, by_deployment: bool) -> str:
    """Where the image a transfer node moved is: its step's ``image_path`` output (a template).

    ``by_deployment``: the node is a step of the deployment, read from a workflow.
    """
    where = f"deployment.outputs.{transfer}" if by_deployment else f"steps.{transfer}.outputs"
    return "{{ " + where + ".image_path }}"


def required_image(
    topology: Topology,
    node: NodeTemplate,
    images: dict[str, str],
    problems: list[ToscaProblem],
) -> PycompssProperty | None:
    """The image ``node``'s ``img_transfer`` requirement names, where ``images`` has it.

    ``images``: the transfer nodes whose image the job can run in (``moved_image`` of each).
    A requirement naming anything but a transfer node is a problem of the file.
    """
    source = image_source(node)
    if source is None:
        return None
    loc = (*node.loc, "requirements")
    target = topology.nodes.get(source)
    if target is None or target.type != IMAGE_TRANSFER_TYPE:
        found = "which is no node of the topology" if target is None else f"of type {target.type}"
        problems.append(
            ToscaProblem(
                loc,
                f"node {node.name!r}: its {IMAGE_REQUIREMENT} requirement names {source!r}, "
                f"{found}; a job's image comes from a {IMAGE_TRANSFER_TYPE} node",
                "name the DLSDAGImageTransfer node that moves the job's image onto the "
                "cluster, or remove the requirement",
            )
        )
        return None
    image = images.get(source)
    if image is None:
        return None  # the workflow is not offered: fates.pending_reasons says why
    return PycompssProperty(f"requirement {IMAGE_REQUIREMENT}", Template(image), loc)
