"""What every model of the workflow format shares: strict keys, and the patterns of names."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# Letters, digits, '_', '.', '-'; never '@', which separates the parts of a workflow ID.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# Inputs the cluster identity uses (docs/compatibility.md, "Routes"): accepted by every workflow.
RESERVED_INPUTS: frozenset[str] = frozenset({"user_id", "vault_id"})
# The names of a step's outputs: they become ``y`` in ``{{ steps.s.outputs.y }}``.
OUTPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Spec(BaseModel):
    """A part of a workflow file: unknown keys are errors, values are not coerced."""

    # Attribute docstrings become the descriptions of /schemas/workflow.json.
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)
