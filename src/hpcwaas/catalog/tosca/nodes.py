"""Node types the importer runs, each turned into one step of our format.

- ``org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob`` (and the older
  ``pycomps.ansible.nodes.PyCOMPSJob``): a ``pycompss`` step, resolved as the PyCOMPSs Yorc
  plugin does (``qos``, ``num_nodes``, ``extra_compss_opts`` from the input ``<Node>_<name>``,
  else ``<name>``, else the property), every workflow input exported to the job's environment;
- ``dls.ansible.nodes.HTTP2SSH``: a ``stage_in`` step;
- ``dls.ansible.nodes.DLSDAGStageOutData``: a ``stage_out`` step (``mid`` and ``register``,
  for a data catalogue, kept as metadata).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hpcwaas.catalog.tosca.functions import (
    FunctionError,
    Resolver,
    Template,
    as_template,
    literal_text,
)
from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.tosca.topology import ENVIRONMENT_TYPE, NodeTemplate, Topology
from hpcwaas.catalog.yamlfile import Location

PYCOMPSS_TYPE = "org.eflows4hpc.pycompss.plugin.nodes.PyCOMPSJob"
OLD_PYCOMPSS_TYPE = "pycomps.ansible.nodes.PyCOMPSJob"
HTTP2SSH_TYPE = "dls.ansible.nodes.HTTP2SSH"
STAGE_OUT_TYPE = "dls.ansible.nodes.DLSDAGStageOutData"
RUNNABLE_TYPES = (PYCOMPSS_TYPE, OLD_PYCOMPSS_TYPE, HTTP2SSH_TYPE, STAGE_OUT_TYPE)
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
    HTTP2SSH_TYPE: frozenset({"url", "target_path", "force"}),
    STAGE_OUT_TYPE: frozenset({"source_path", "mid", "register"}),
}
_INPUT_NAME_KEYS: dict[str, tuple[str, ...]] = {
    HTTP2SSH_TYPE: ("input_name_for_url", "input_name_for_target_path"),
    STAGE_OUT_TYPE: ("input_name_for_source_path",),
}
# ${name} or $name in a PyCOMPSs argument: expanded on the cluster by the original.
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_EXPRESSION = re.compile(r"\{\{ ([^{}]+) \}\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NO_DATA_CATALOGUE = "no data catalogue is configured: mid and register are kept as metadata only"


class NodeConverter:
    """Turns the nodes of one workflow into steps of our format."""

    def __init__(self, topology: Topology, resolver: Resolver, problems: list[ToscaProblem]):
        self.topology = topology
        self.resolver = resolver
        self.problems = problems

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
        before = len(self.problems)
        self._unknown_properties(node)
        converters: dict[str, Callable[[NodeTemplate], dict[str, Any]]] = {
            PYCOMPSS_TYPE: self._pycompss,
            OLD_PYCOMPSS_TYPE: self._old_pycompss,
            HTTP2SSH_TYPE: self._stage_in,
            STAGE_OUT_TYPE: self._stage_out,
        }
        try:
            step = converters[node.type](node)
        except FunctionError as exc:
            self.problems.append(exc.problem)
            return None
        return step if len(self.problems) == before else None

    def _unknown_properties(self, node: NodeTemplate) -> None:
        known = _KNOWN[node.type]
        for key in node.properties:
            if key in known or key in _IGNORED or str(key).startswith(_IGNORED_PREFIXES):
                continue
            self.problems.append(
                ToscaProblem(
                    node.property_loc(key),
                    f"node {node.name!r}: unknown property {key!r} of {node.type}",
                    f"check the spelling; properties used: {', '.join(sorted(known))}",
                )
            )

    def _get(self, node: NodeTemplate, *keys: str) -> Any:
        value: Any = node.properties
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return self.resolver.resolve(value, node.property_loc(*keys), node.name)

    # --- PyCOMPSs -------------------------------------------------------------------------

    def _pycompss(self, node: NodeTemplate) -> dict[str, Any]:
        modules = self._get(node, "submission_params", "compss_modules")
        container = self._get(node, "application", "container_opts") or {}
        return self._pycompss_step(
            node,
            command=self._get(node, "application", "command"),
            command_loc=node.property_loc("application", "command"),
            arguments=self._get(node, "application", "arguments"),
            modules=modules,
            submission={
                key: self._get(node, "submission_params", key)
                for key in ("num_nodes", "qos", "python_interpreter", "extra_compss_opts")
            },
            container=container if isinstance(container, dict) else {},
        )

    def _old_pycompss(self, node: NodeTemplate) -> dict[str, Any]:
        version = self._get(node, "compss_module_version")
        return self._pycompss_step(
            node,
            command=self._get(node, "command"),
            command_loc=node.property_loc("command"),
            arguments=self._get(node, "arguments"),
            modules=[f"COMPSs/{version}"] if version else None,
            submission={
                key: self._get(node, key)
                for key in ("num_nodes", "qos", "python_interpreter", "extra_compss_opts")
            },
            container={
                key: self._get(node, key)
                for key in ("container_image", "container_compss_path", "container_opts")
            },
        )

    def _pycompss_step(
        self,
        node: NodeTemplate,
        *,
        command: Any,
        command_loc: Location,
        arguments: Any,
        modules: Any,
        submission: dict[str, Any],
        container: dict[str, Any],
    ) -> dict[str, Any]:
        if not command:
            self.problems.append(
                ToscaProblem(
                    command_loc, f"node {node.name!r} has no command", "give the application to run"
                )
            )
            return {}
        step: dict[str, Any] = {
            "kind": "pycompss",
            "app": self._argument(command, command_loc),
            "arguments": [
                self._argument(a, node.property_loc("arguments", i))
                for i, a in enumerate(arguments or [])
            ],
        }
        if not modules:
            environment = self.topology.environment_of(node)
            if environment is not None:
                modules = self.resolver.resolve(
                    environment.properties.get("pycompss_modules"),
                    environment.property_loc("pycompss_modules"),
                    environment.name,
                )
        if isinstance(modules, str):
            modules = modules.split()
        if modules:
            step["modules"] = [str(m) for m in modules]
        num_nodes = self._chain(node, "num_nodes", submission.get("num_nodes"))
        if num_nodes not in (None, ""):
            step["num_nodes"] = num_nodes if isinstance(num_nodes, int) else str(num_nodes)
        qos = self._chain(node, "qos", submission.get("qos"))
        if qos not in (None, ""):
            step["qos"] = str(qos)
        extra = self._chain(node, "extra_compss_opts", submission.get("extra_compss_opts"))
        if isinstance(extra, Template):
            step["extra_options"] = [str(extra)]
        elif extra:
            step["extra_options"] = str(extra).split()
        interpreter = submission.get("python_interpreter")
        if interpreter:
            step["python_interpreter"] = str(interpreter)
        for key in ("container_image", "container_compss_path", "container_opts"):
            value = container.get(key)
            if value not in (None, ""):
                step[key] = str(value)
        step["env"] = {
            name: "{{ inputs." + name + " }}"
            for name in sorted(self.resolver.input_names)
            if _ENV_NAME.fullmatch(name)
        }
        return step

    def _chain(self, node: NodeTemplate, name: str, value: Any) -> Any:
        """The plugin's order: input ``<Node>_<name>``, then ``<name>``, then the property."""
        declared = [n for n in (f"{node.name}_{name}", name) if n in self.resolver.input_names]
        if not declared:
            return value
        parts = [f"inputs.{n}" for n in declared]
        if isinstance(value, Template):
            whole = _EXPRESSION.fullmatch(value)
            if whole is not None:  # {{ inputs.x }}: the property's own input comes last
                parts.append(f"({whole.group(1)})")
        elif value not in (None, ""):
            parts.append(repr(value))
        return Template("{{ " + " or ".join(parts) + " }}")

    def _argument(self, value: Any, loc: Location) -> str:
        """An argument as template text: ``${input}`` of a workflow input rendered by us."""
        if isinstance(value, Template):
            return str(value)
        text = literal_text(value)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            if name not in self.resolver.input_names:
                declared = ", ".join(sorted(self.resolver.input_names)) or "none"
                self.problems.append(
                    ToscaProblem(
                        loc,
                        f"argument {text!r} uses ${{{name}}}, which is not a workflow input",
                        f"use a workflow input (declared: {declared})",
                    )
                )
                return match.group(0)
            return "{{ inputs." + name + " }}"

        return _VARIABLE.sub(replace, text)

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
        if value in (None, ""):
            via = f" or the input {input_name!r}" if isinstance(input_name, str) else ""
            self.problems.append(
                ToscaProblem(
                    node.property_loc(key),
                    f"node {node.name!r} ({node.type}) has no {key}",
                    f"set the property {key}{via} (declare it among the workflow's inputs), "
                    f"or name an input with input_name_for_{key}",
                )
            )
        return value

    def _stage_in(self, node: NodeTemplate) -> dict[str, Any]:
        step: dict[str, Any] = {
            "kind": "stage_in",
            "url": as_template(self._from_input_or_property(node, "url", secrets_allowed=True)),
            "target_path": as_template(self._from_input_or_property(node, "target_path")),
        }
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
            step["description"] = f"{node.name}: {NO_DATA_CATALOGUE}"
        return step
