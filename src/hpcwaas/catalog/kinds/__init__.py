"""The step kinds, one module each; this registry is the one list of them.

Adding a kind is one module (see ``base.py``) and one line in ``KINDS``: the workflow format
(``catalog.model.StepSpec``), its JSON Schema, the load-time checks, where an application may
be deployed, the dry run and the engine's attempts all follow from it.
"""

from __future__ import annotations

from typing import Any

from hpcwaas.catalog.kinds.base import StepKind, StepSettings
from hpcwaas.catalog.kinds.dag_run import DagRunKind
from hpcwaas.catalog.kinds.image_build import ImageBuildKind
from hpcwaas.catalog.kinds.image_transfer import ImageTransferKind
from hpcwaas.catalog.kinds.pycompss import PycompssKind
from hpcwaas.catalog.kinds.shell import ShellKind
from hpcwaas.catalog.kinds.slurm import SlurmKind
from hpcwaas.catalog.kinds.stage_in import StageInKind
from hpcwaas.catalog.kinds.stage_out import StageOutKind

# In the order of the format's union (and of its JSON Schema's oneOf).
KINDS: dict[str, StepKind[Any, Any]] = {
    kind.name: kind
    for kind in (
        ShellKind(),
        SlurmKind(),
        PycompssKind(),
        StageInKind(),
        StageOutKind(),
        DagRunKind(),
        ImageBuildKind(),
        ImageTransferKind(),
    )
}


def kind_of(step: StepSettings) -> StepKind[Any, Any]:
    """The kind of a step of a loaded workflow."""
    return KINDS[step.kind]


def register(kind: StepKind[Any, Any]) -> None:
    """Add a kind after the format was built (a kind defined outside this package).

    The format's models, its JSON Schema and the checks take it at once.
    """
    # Imported here: the format's models are built from this registry.
    from hpcwaas.catalog import model, schema

    KINDS[kind.name] = kind
    model.rebuild_step_union()
    schema.workflow_schema.cache_clear()
