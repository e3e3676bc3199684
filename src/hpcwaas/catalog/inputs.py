"""Validation of the inputs given to a trigger against a workflow's declared inputs."""

from __future__ import annotations

import copy
import json
from typing import Any

from hpcwaas.catalog.errors import InputValidationError
from hpcwaas.catalog.model import WorkflowSpec
from hpcwaas.catalog.spec import RESERVED_INPUTS
from hpcwaas.catalog.values import ValueProblem, check_text, check_value, describe


def validate_inputs(
    spec: WorkflowSpec,
    raw: dict[str, Any],
    *,
    reserved: frozenset[str] = RESERVED_INPUTS,
    max_inputs: int = 100,
    max_value_bytes: int = 65536,
) -> dict[str, Any]:
    """Return the complete typed inputs (defaults filled in) or raise InputValidationError."""
    if not isinstance(raw, dict):
        raise InputValidationError(
            [f"inputs must be an object of names to values, got {describe(raw)}"]
        )
    if len(raw) > max_inputs:
        # Stop here: listing thousands of unknown names would help nobody.
        raise InputValidationError(
            [f"too many inputs: {len(raw)} given, at most {max_inputs} (limits.max_inputs)"]
        )
    problems: list[str] = []
    about: list[str | None] = []  # the input each problem concerns
    result: dict[str, Any] = {}
    for name, value in raw.items():
        declared = spec.inputs.get(name)
        if declared is None and name not in reserved:
            problems.append(_unknown(name, spec, reserved))
            about.append(name)
            continue
        size = _size(value)
        if size > max_value_bytes:
            problems.append(
                f"input {name!r}: too long: {size} bytes, at most {max_value_bytes} "
                "(limits.max_input_bytes)"
            )
            about.append(name)
            continue
        try:
            if declared is not None:
                result[name] = check_value(declared, value)
            else:
                result[name] = _reserved_value(value)
        except ValueProblem as exc:
            problems.append(f"input {name!r}: {exc}")
            about.append(name)
    for name, declared in spec.inputs.items():
        if name in raw:
            continue
        if declared.required:
            hint = f" ({declared.description})" if declared.description else ""
            problems.append(f"missing required input {name!r} of type {declared.type}{hint}")
            about.append(name)
        else:
            result[name] = copy.deepcopy(declared.default)
    if problems:
        raise InputValidationError(problems, about)
    return result


def _unknown(name: str, spec: WorkflowSpec, reserved: frozenset[str]) -> str:
    declared = ", ".join(spec.inputs) or "none"
    also = f" (and the reserved {', '.join(sorted(reserved))})" if reserved else ""
    return f"unknown input {name!r}: this workflow declares {declared}{also}"


def _reserved_value(value: Any) -> str:
    # user_id / vault_id name a cluster account and a key: strings, though a bare number is fine.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueProblem(f"expected a string, got {describe(value)}")
    return check_text(value)


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    try:
        return len(
            json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
        )
    except ValueError:
        return 0
