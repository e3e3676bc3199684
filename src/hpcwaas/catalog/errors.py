"""Errors of the workflow catalog.

    CatalogError
     ├── CatalogFileError       a workflow file cannot be loaded (load time)
     ├── MalformedWorkflowId    not <application>@<environment>@<workflow>  (HTTP 400)
     ├── WorkflowNotFound       unknown, not exposed, or not deployed there (HTTP 404)
     ├── WorkflowForbidden      exposed, but the user is not authorized     (HTTP 403)
     ├── InputValidationError   trigger inputs do not fit the declaration   (HTTP 400)
     └── RenderError            a step template cannot be rendered

Every message is safe to show to the user who caused it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpcwaas.catalog.loader import FileProblem


class CatalogError(Exception):
    """Base of every catalog error."""


class CatalogFileError(CatalogError):
    """A workflow file cannot be loaded; ``problems`` lists every reason.

    ``details`` holds the same problems with their file, line and hint apart, when known.
    """

    def __init__(self, problems: list[str], details: list[FileProblem] | None = None) -> None:
        self.problems = list(problems)
        self.details = list(details) if details is not None else []
        super().__init__("\n".join(self.problems))


class MalformedWorkflowId(CatalogError):
    """The workflow ID is not ``<application>@<environment>@<workflow>``."""


class WorkflowNotFound(CatalogError):
    """No such exposed workflow on that environment; the message says which part is unknown."""


class WorkflowForbidden(CatalogError):
    """The workflow exists and is exposed, but the user is not in its application's access list."""


class InputValidationError(CatalogError):
    """The trigger inputs do not fit the workflow's declared inputs; ``problems`` lists them all.

    ``inputs[i]`` names the input problem i is about (None when it concerns no single input).
    """

    def __init__(self, problems: list[str], inputs: list[str | None] | None = None) -> None:
        self.problems = list(problems)
        self.inputs = list(inputs) if inputs is not None else [None] * len(self.problems)
        super().__init__("; ".join(self.problems))


class RenderError(CatalogError):
    """A step template cannot be rendered (undefined name, syntax, sandbox violation)."""
