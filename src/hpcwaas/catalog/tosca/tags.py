"""The original's tags: which workflows are exposed, who may use them, where they run.

Alien4Cloud keeps them on the application; here they are given in the topology's
``metadata`` or in a file beside it, ``<topology stem>.tags`` (YAML), whose values win:

    hpcwaas-workflows: exec_job               # comma-separated workflow names
    hpcwaas-authorized-users: 5e1f...,a07b... # comma-separated user IDs; empty: everyone
    hpcwaas-environments: hpc1                # optional: configured environment IDs
    hpcwaas-deployment-inputs:                # optional: the deployment phase's inputs
      images_path: /shared/images
    hpcwaas-inputs:                           # optional: workflow inputs the file omits
      Case_type: string                       # a type, or a TOSCA input definition
      Reduction_method: {type: string, default: pod}
    hpcwaas-properties:                       # optional: node properties the file omits
      PyCOMPSJob:                             # a node, then each property's whole value
        application: {command: /mlesmap/src/model_selection.py}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hpcwaas.catalog.tosca.problems import ToscaProblem

WORKFLOWS_TAG = "hpcwaas-workflows"
USERS_TAG = "hpcwaas-authorized-users"
ENVIRONMENTS_TAG = "hpcwaas-environments"
DEPLOYMENT_INPUTS_TAG = "hpcwaas-deployment-inputs"
INPUTS_TAG = "hpcwaas-inputs"
PROPERTIES_TAG = "hpcwaas-properties"
TAGS_SUFFIX = ".tags"
_TAGS = (
    WORKFLOWS_TAG,
    USERS_TAG,
    ENVIRONMENTS_TAG,
    DEPLOYMENT_INPUTS_TAG,
    INPUTS_TAG,
    PROPERTIES_TAG,
)


@dataclass(frozen=True)
class Tags:
    """The tags' values, split on commas."""

    workflows: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)
    # values of the topology inputs the deployment phase's nodes use, by input name
    deployment_inputs: dict[str, Any] = field(default_factory=dict)
    # inputs the topology's nodes use and it does not declare: TOSCA definitions, by name
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # property values that replace (or add to) the topology's, by node then property name
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)


def tags_file(path: Path) -> Path:
    """The tags file beside a topology file."""
    return path.with_suffix(TAGS_SUFFIX)


def read_tags(metadata: dict[str, Any], path: Path, problems: list[ToscaProblem]) -> Tags:
    """The tags from the topology's metadata, overridden by the tags file if there is one."""
    values = {k: v for k, v in metadata.items() if k in _TAGS}
    beside = tags_file(path)
    if beside.is_file():
        try:
            extra = yaml.safe_load(beside.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            problems.append(
                ToscaProblem((), f"cannot read the tags file {beside}: {exc}", "fix its YAML")
            )
            extra = {}
        if isinstance(extra, dict):
            values.update({k: v for k, v in extra.items() if k in _TAGS})
        elif extra is not None:
            problems.append(
                ToscaProblem(
                    (),
                    f"the tags file {beside} must hold a mapping",
                    f"e.g. {WORKFLOWS_TAG}: exec_job",
                )
            )
    deployment_inputs = values.get(DEPLOYMENT_INPUTS_TAG) or {}
    if not isinstance(deployment_inputs, dict):
        problems.append(
            ToscaProblem(
                (),
                f"{DEPLOYMENT_INPUTS_TAG} must be a mapping of input names to values",
                f"e.g. {DEPLOYMENT_INPUTS_TAG}: {{images_path: /shared/images}}",
            )
        )
        deployment_inputs = {}
    return Tags(
        workflows=_split(values.get(WORKFLOWS_TAG)),
        users=_split(values.get(USERS_TAG)),
        environments=_split(values.get(ENVIRONMENTS_TAG)),
        deployment_inputs={str(k): v for k, v in deployment_inputs.items()},
        inputs=_input_definitions(values.get(INPUTS_TAG), problems),
        properties=_node_properties(values.get(PROPERTIES_TAG), problems),
    )


def _input_definitions(value: Any, problems: list[ToscaProblem]) -> dict[str, dict[str, Any]]:
    """``hpcwaas-inputs``: each a TOSCA input definition, or its type alone."""
    example = f"e.g. {INPUTS_TAG}: {{Case_type: string, level: {{type: integer, default: 1}}}}"
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(
            ToscaProblem((), f"{INPUTS_TAG} must be a mapping of input names to types", example)
        )
        return {}
    definitions: dict[str, dict[str, Any]] = {}
    for name, definition in value.items():
        if isinstance(definition, str):
            definition = {"type": definition}
        if not isinstance(definition, dict):
            problems.append(
                ToscaProblem(
                    (),
                    f"{INPUTS_TAG}: input {name!r} must be given a type or a definition",
                    example,
                )
            )
            continue
        definitions[str(name)] = definition
    return definitions


def _node_properties(value: Any, problems: list[ToscaProblem]) -> dict[str, dict[str, Any]]:
    """``hpcwaas-properties``: for each node named, its properties' values."""
    example = f"e.g. {PROPERTIES_TAG}: {{PyCOMPSJob: {{application: {{command: /apps/app.py}}}}}}"
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(
            ToscaProblem((), f"{PROPERTIES_TAG} must be a mapping of node names", example)
        )
        return {}
    found: dict[str, dict[str, Any]] = {}
    for node, properties in value.items():
        if not isinstance(properties, dict) or not properties:
            problems.append(
                ToscaProblem(
                    (),
                    f"{PROPERTIES_TAG}: node {node!r} must be given a mapping of property "
                    "names to values",
                    example,
                )
            )
            continue
        found[str(node)] = {str(k): v for k, v in properties.items()}
    return found


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]
