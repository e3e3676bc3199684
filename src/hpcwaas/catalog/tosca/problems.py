"""What goes wrong while importing a TOSCA topology: a place in the topology, a message, a fix."""

from __future__ import annotations

from dataclasses import dataclass

from hpcwaas.catalog.yamlfile import Location


@dataclass(frozen=True)
class ToscaProblem:
    """One thing the importer cannot use; ``loc`` is a key path in the topology file."""

    loc: Location
    message: str
    hint: str


class ToscaImportError(Exception):
    """The topology cannot be imported; ``problems`` lists every reason found."""

    def __init__(self, problems: list[ToscaProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(p.message for p in self.problems))
