"""One problem of a workflow file: where (a key path), what, and how to fix it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hpcwaas.catalog.spec import NAME_PATTERN
from hpcwaas.catalog.yamlfile import Location

NAME = re.compile(NAME_PATTERN)
NAME_HINT = (
    "use letters, digits, '_', '.' and '-', starting with a letter or digit "
    "('@' separates the parts of a workflow ID)"
)
TEMPLATE_HINT = "declare the input under inputs, or fix the name in {{ inputs.<name> }}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where (a key path), what, and how to fix it.

    ``line``, for a problem inside a template, is its line in the template's text (1-based):
    the file's line is then counted from where the text starts.
    """

    loc: Location
    message: str
    hint: str
    line: int | None = None
