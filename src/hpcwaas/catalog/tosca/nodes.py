"""Node types the importer runs, each turned into one step of our format.

- ``org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob`` (and the older
  ``pycomps.ansible.nodes.PyCOMPSJob``): a ``pycompss`` step, read as the PyCOMPSs Yorc
  plugin ran it (``tosca.pycompss``), the environment node's modules replacing its own;
- the data logistics types (``dls.ansible.nodes.DLSDAGRun`` and its children, ``tosca.dls``):
  a ``dag_run`` step of their DAG; ``HTTP2SSH`` and ``DLSDAGStageOutData`` also carry the
  ``stage_in`` / ``stage_out`` step run instead on environments without an Airflow (``mid`` and
  ``register``, for a data catalogue, kept there as metadata);
- ``imagecreation.ansible.nodes.ImageCreation``: an ``image_build`` step (the account is the
  environment's, never the node's ``username`` and ``password``);
- ``dls.ansible.nodes.DLSDAGImageTransfer``: an ``image_transfer`` step of the image built by
  the ImageCreation node it depends on. A PyCOMPSJob whose ``img_transfer`` requirement names
  one runs in the image it moved (its ``image_path`` output), whatever the job's own
  ``container_image``: the plugin read the requirement last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpcwaas.catalog.tosca.dls import (
    DAG_TYPES,
    HTTP2SSH_TYPE,
    STAGE_OUT_TYPE,
    dag_run_step,
    undeclared_input,
)
from hpcwaas.catalog.tosca.functions import (
    FunctionError,
    Resolver,
    Template,
    as_template,
)
from hpcwaas.catalog.tosca.images import IMAGE_TRANSFER_TYPE, required_image
from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.tosca.pycompss import PycompssConversion, PycompssProperty
from hpcwaas.catalog.tosca.tags import PROPERTIES_TAG
from hpcwaas.catalog.tosca.topology import ENVIRONMENT_TYPE, NodeTemplate, Topology

PYCOMPSS_TYPE = "org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob"
OLD_PYCOMPSS_TYPE = "pycomps.ansible.nodes.PyCOMPSJob"
IMAGE_BUILD_TYPE = "imagecreation.ansible.nodes.ImageCreation"
RUNNABLE_TYPES = (
    PYCOMPSS_TYPE,
    OLD_PYCOMPSS_TYPE,
    *DAG_TYPES,
    IMAGE_BUILD_TYPE,
    IMAGE_TRANSFER_TYPE,
)
SUPPORTED_TYPES = (*RUNNABLE_TYPES, ENVIRONMENT_TYPE)

# Properties that need no action from us (the data logistics service's own settings...).
_IGNORED = frozenset(
    {"dag_id", "debug", "run_in_standard_mode", "user_id", "vault_id", "keep_environment"}
)
_IGNORED_PREFIXES = ("dls_api_", "a4c_edit_", "input_name_for_")
_KNOWN: dict[str, frozenset[str]] = {
    PYCOMPSS_TYPE: frozenset({"environment", "submission_params", "application"}),
    OLD_PYCOMPSS_TYPE: frozenset(
        {
            "pycomps_endpoint",
            "compss_module_version",
            "num_nodes",
            "qos",
            "input_data_path",
            "output_data_path",
            "command",
            "arguments",
            "container_image",
            "container_compss_path",
            "container_opts",
            "python_interpreter",
            "extra_compss_opts",
        }
    ),
    **{name: dag_type.properties for name, dag_type in DAG_TYPES.items()},
    # username, password, insecure_tls: the environment's image_creation: setting instead
    IMAGE_BUILD_TYPE: frozenset(
        {
            "service_url",
            "insecure_tls",
            "username",
            "password",
            "machine",
            "workflow",
            "step_id",
            "force",
            "version",
            "push",
        }
    ),
    # image_id, image_builder_url, target_host: the build's download_url and the environment
    IMAGE_TRANSFER_TYPE: frozenset(
        {
            "image_id",
            "target_path",
            "target_host",
            "image_builder_url",
            "image_builder_vault_secret_path",
            "force",
        }
    ),
}
_MACHINE_KEYS = ("platform", "architecture", "container_engine", "mpi", "gpu")
NO_DATA_CATALOGUE = (
    "where the environment has no Airflow, mid and register are kept as metadata only "
    "(no data catalogue)"
)


def unread(key: str) -> bool:
    """Whether a property is one the importer never reads (the DLS's own settings...)."""
    return key in _IGNORED or str(key).startswith(_IGNORED_PREFIXES)


def unknown_properties(node: NodeTemplate) -> list[ToscaProblem]:
    """The properties a node of a known type sets that its type does not have (misspelt)."""
    known = _KNOWN.get(node.type)
    if known is None:
        return []
    return [
        ToscaProblem(
            node.property_loc(key),
            f"node {node.name!r}: unknown property {key!r} of {node.type}",
            f"check the spelling; properties used: {', '.join(sorted(known))}",
        )
        for key in node.properties
        if key not in known and not unread(key)
    ]


class NodeConverter:
    """Turns the nodes of one workflow into steps of our format.

    ``images``: the transfer nodes whose image this workflow's jobs can run in, each with where
    the image is (``images.moved_image``); a job requiring another is not offered (the caller).

    ``problems`` make the file invalid. ``gaps`` are what the topology leaves out and the
    original would have run as nothing (an input no declaration gives, no application): the
    file is valid, as Alien4Cloud took it, and the workflow is not offered until the operator
    fills them (the caller).
    """

    def __init__(
        self,
        topology: Topology,
        resolver: Resolver,
        problems: list[ToscaProblem],
        images: dict[str, str] | None = None,
    ):
        self.topology = topology
        self.resolver = resolver
        self.problems = problems
        self.gaps: list[ToscaProblem] = []
        self.images = images or {}

    def step(self, node: NodeTemplate) -> dict[str, Any] | None:
        """Our step for ``node`` (without ``needs``), or None after adding its problems."""
        if node.type not in RUNNABLE_TYPES:
            self.problems.append(
                ToscaProblem(
                    (*node.loc, "type"),
                    f"node {node.name!r}: unsupported node type {node.type!r}",
                    f"use one of the supported node types: {', '.join(SUPPORTED_TYPES)}",
                )
            )
            return None
        before, gaps_before = len(self.problems), len(self.gaps)
        self.problems.extend(unknown_properties(node))
        converters: dict[str, Callable[[NodeTemplate], dict[str, Any]]] = {
            PYCOMPSS_TYPE: self._pycompss,
            OLD_PYCOMPSS_TYPE: self._old_pycompss,
            **dict.fromkeys(DAG_TYPES, self._dag_run),
            IMAGE_BUILD_TYPE: self._image_build,
            IMAGE_TRANSFER_TYPE: self._image_transfer,
        }
        try:
            step = converters[node.type](node)
        except FunctionError as exc:
            self.problems.append(exc.problem)
            return None
        return step if (len(self.problems), len(self.gaps)) == (before, gaps_before) else None

    def _get(self, node: NodeTemplate, *keys: str) -> Any:
        value: Any = node.properties
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return self.resolver.resolve(value, node.property_loc(*keys), node.name)

    # --- PyCOMPSs -------------------------------------------------------------------------

    def _pycompss(self, node: NodeTemplate) -> dict[str, Any]:
        def prop(*keys: str) -> PycompssProperty:
            return self._property(node, ".".join(keys), keys)

        container = ("application", "container_opts")
        return self._pycompss_step(
            node,
            {
                "command": prop("application", "command"),
                "arguments": self._arguments(node, ("application", "arguments")),
                "num_nodes": prop("submission_params", "num_nodes"),
                "qos": prop("submission_params", "qos"),
                "python_interpreter": prop("submission_params", "python_interpreter"),
                "extra_compss_opts": prop("submission_params", "extra_compss_opts"),
                "container_image": prop(*container, "container_image"),
                "container_compss_path": prop(*container, "container_compss_path"),
                "container_opts": prop(*container, "container_opts"),
            },
            self._get(node, "submission_params", "compss_modules"),
        )

    def _old_pycompss(self, node: NodeTemplate) -> dict[str, Any]:
        version = self._get(node, "compss_module_version")
        names = (
            "command",
            "num_nodes",
            "qos",
            "python_interpreter",
            "extra_compss_opts",
            "container_image",
            "container_compss_path",
            "container_opts",
        )
        props = {name: self._property(node, name, (name,)) for name in names}
        props["arguments"] = self._arguments(node, ("arguments",))
        return self._pycompss_step(node, props, [f"COMPSs/{version}"] if version else None)

    def _property(self, node: NodeTemplate, name: str, keys: tuple[str, ...]) -> PycompssProperty:
        return PycompssProperty(name, self._get(node, *keys), node.property_loc(*keys))

    def _arguments(self, node: NodeTemplate, keys: tuple[str, ...]) -> PycompssProperty:
        """The arguments, each a property of its own (its words, its line)."""
        name = ".".join(keys)
        raw = self._get(node, *keys)
        if raw is not None and not isinstance(raw, list):
            raw = [raw]
        items = [
            PycompssProperty(f"{name}[{i}]", value, node.property_loc(*keys, i))
            for i, value in enumerate(raw or [])
        ]
        return PycompssProperty(name, items, node.property_loc(*keys))

    def _pycompss_step(
        self, node: NodeTemplate, props: dict[str, PycompssProperty], modules: Any
    ) -> dict[str, Any]:
        image = required_image(self.topology, node, self.images, self.problems)
        if image is not None:
            props["container_image"] = image
        conversion = PycompssConversion(
            node.name, self.resolver.input_names, self.problems, self.gaps
        )
        step = conversion.step(props)
        environment = self.topology.environment_of(node)
        if environment is not None:  # the environment's modules replace the job's (plugin)
            from_environment = self.resolver.resolve(
                environment.properties.get("pycompss_modules"),
                environment.property_loc("pycompss_modules"),
                environment.name,
            )
            modules = from_environment or modules
        if isinstance(modules, str):
            modules = modules.replace(",", " ").split()
        if modules:
            step["modules"] = [str(m) for m in modules]
        return step

    # --- data logistics -------------------------------------------------------------------

    def _from_input_or_property(
        self, node: NodeTemplate, key: str, *, secrets_allowed: bool = False
    ) -> Any:
        """``input_name_for_<key>`` names a workflow input that gives the value, if declared.

        ``secrets_allowed``: the property may use get_secret (its value reaches no command).
        """
        input_name = node.properties.get(f"input_name_for_{key}")
        if isinstance(input_name, str) and input_name in self.resolver.input_names:
            return Template("{{ inputs." + input_name + " }}")
        if secrets_allowed:
            value = self.resolver.resolve_secret_capable(
                node.properties.get(key), node.property_loc(key), node.name
            )
        else:
            value = self._get(node, key)
        gap = undeclared_input(node, key, self.resolver.input_names)
        if value in (None, "") and gap is not None:
            self.gaps.append(gap)  # the original took it from the inputs given at launch
        elif value in (None, ""):
            self.problems.append(
                ToscaProblem(
                    node.property_loc(key),
                    f"node {node.name!r} ({node.type}) has no {key}",
                    f"set the property {key}, or name a workflow input with input_name_for_{key}"
                    f" (in the topology, or in the tags file: {PROPERTIES_TAG}: "
                    f"{{{node.name}: {{{key}: <value>}}}})",
                )
            )
        return value

    def _dag_run(self, node: NodeTemplate) -> dict[str, Any]:
        """A ``dag_run`` step; with the step that does its work where there is no Airflow."""
        step = dag_run_step(node, self.resolver, self._get, self.problems, self.gaps)
        instead = {HTTP2SSH_TYPE: self._stage_in, STAGE_OUT_TYPE: self._stage_out}.get(node.type)
        if instead is not None:
            step["without_airflow"] = instead(node)
        return step

    def _stage_in(self, node: NodeTemplate) -> dict[str, Any]:
        step: dict[str, Any] = {
            "kind": "stage_in",
            "url": as_template(self._from_input_or_property(node, "url", secrets_allowed=True)),
            "target_path": as_template(self._from_input_or_property(node, "target_path")),
        }
        return self._with_force(node, step)

    def _with_force(self, node: NodeTemplate, step: dict[str, Any]) -> dict[str, Any]:
        """``step`` with the node's ``force``, which must be a literal boolean."""
        force = self._get(node, "force")
        if isinstance(force, bool):
            step["force"] = force
        elif force is not None:
            self.problems.append(
                ToscaProblem(
                    node.property_loc("force"),
                    f"node {node.name!r}: force must be true or false (an input cannot set it)",
                    "write force: true or force: false",
                )
            )
        return step

    # --- container images -----------------------------------------------------------------

    def _image_build(self, node: NodeTemplate) -> dict[str, Any]:
        machine = self._get(node, "machine")
        if not isinstance(machine, dict):
            machine = {}
            self.problems.append(
                ToscaProblem(
                    node.property_loc("machine"),
                    f"node {node.name!r} ({node.type}) has no machine",
                    "set machine: {platform: linux/amd64, architecture: skylake, "
                    "container_engine: singularity}",
                )
            )
        step: dict[str, Any] = {
            "kind": "image_build",
            "machine": {k: str(machine[k]) for k in _MACHINE_KEYS if machine.get(k)},
            "workflow": as_template(self._from_input_or_property(node, "workflow")),
            "step_id": as_template(self._from_input_or_property(node, "step_id")),
        }
        for key in ("service_url", "version"):
            value = self._get(node, key)
            if value not in (None, ""):
                step[key] = as_template(value)
        push = self._get(node, "push")
        if isinstance(push, bool):
            step["push"] = push
        return self._with_force(node, step)

    def _image_transfer(self, node: NodeTemplate) -> dict[str, Any]:
        builds = [
            target
            for target in node.required_nodes()
            if (found := self.topology.nodes.get(target)) is not None
            and found.type == IMAGE_BUILD_TYPE
        ]
        if len(builds) != 1:
            self.problems.append(
                ToscaProblem(
                    (*node.loc, "requirements"),
                    f"node {node.name!r} ({node.type}) depends on {len(builds)} ImageCreation "
                    "nodes; its image is the one build it depends on",
                    "give it one requirement (dependency) on the ImageCreation node",
                )
            )
            builds = builds[:1] or ["?"]
        step: dict[str, Any] = {
            "kind": "image_transfer",
            "url": "{{ steps." + builds[0] + ".outputs.download_url }}",
            "target_path": as_template(self._from_input_or_property(node, "target_path")),
        }
        vault_path = self._get(node, "image_builder_vault_secret_path")
        if isinstance(vault_path, str) and vault_path:
            step["vault_path"] = vault_path
        return self._with_force(node, step)

    def _stage_out(self, node: NodeTemplate) -> dict[str, Any]:
        step: dict[str, Any] = {
            "kind": "stage_out",
            "source_path": as_template(self._from_input_or_property(node, "source_path")),
        }
        metadata: dict[str, Any] = {}
        for key in ("mid", "register"):
            raw = node.properties.get(key)
            if raw is not None:
                metadata[key] = raw  # kept as written: no data catalogue reads it here
        if metadata:
            metadata["data_catalogue"] = "not configured"
            step["metadata"] = metadata
        return step
