"""The workflow catalog: workflow files, their validation, inputs and step templates.

``Catalog.load`` reads the application files; ``validate_inputs`` checks a trigger's inputs;
``render_command`` / ``render_env`` turn a step's templates into a safely quoted command.
The format is documented in docs/workflows.md.
"""

from hpcwaas.catalog.catalog import Catalog, DeployedWorkflow, parse_workflow_id
from hpcwaas.catalog.errors import (
    CatalogError,
    CatalogFileError,
    InputValidationError,
    MalformedWorkflowId,
    RenderError,
    WorkflowForbidden,
    WorkflowNotFound,
)
from hpcwaas.catalog.inputs import validate_inputs
from hpcwaas.catalog.kinds.pycompss import PycompssStep
from hpcwaas.catalog.kinds.shell import ShellStep
from hpcwaas.catalog.kinds.slurm import SlurmOptionsSpec, SlurmStep
from hpcwaas.catalog.kinds.stage_in import StageInStep
from hpcwaas.catalog.kinds.stage_out import StageOutStep
from hpcwaas.catalog.model import (
    AccessSpec,
    ApplicationSpec,
    InputSpec,
    OutputSpec,
    StepSpec,
    WorkflowSpec,
)
from hpcwaas.catalog.render import check_template, render_command, render_env
from hpcwaas.catalog.spec import RESERVED_INPUTS

__all__ = [
    "RESERVED_INPUTS",
    "AccessSpec",
    "ApplicationSpec",
    "Catalog",
    "CatalogError",
    "CatalogFileError",
    "DeployedWorkflow",
    "InputSpec",
    "InputValidationError",
    "MalformedWorkflowId",
    "OutputSpec",
    "PycompssStep",
    "RenderError",
    "ShellStep",
    "SlurmOptionsSpec",
    "SlurmStep",
    "StageInStep",
    "StageOutStep",
    "StepSpec",
    "WorkflowForbidden",
    "WorkflowNotFound",
    "WorkflowSpec",
    "check_template",
    "parse_workflow_id",
    "render_command",
    "render_env",
    "validate_inputs",
]
