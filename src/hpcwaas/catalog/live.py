"""The catalog a running server serves: swapped whole on reload, old definitions kept for runs.

A reload builds a new ``Catalog`` from the files and replaces the current one in one
assignment, so a request sees either the old catalog or the new one, never a mix. Executions
keep the definition they were triggered with: ``definition(workflow_id, digest)`` finds it in
the current catalog or among the definitions of earlier loads that executions still use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from pathlib import Path

from hpcwaas.catalog.catalog import Catalog, DeployedWorkflow, workflow_files

log = logging.getLogger(__name__)

# (path, modification time in ns, size) of each file, and the directories that exist.
Fingerprint = tuple[tuple[str, int, int], ...]
DefinitionKey = tuple[str, str]  # (workflow ID, digest of its file)


def catalog_fingerprint(dirs: list[Path]) -> Fingerprint:
    """What the watcher compares between two polls: the workflow files and their stat."""
    entries: list[tuple[str, int, int]] = []
    for directory in dirs:
        # A directory that appears or vanishes changes the catalog too.
        entries.append((f"{directory}/", 1 if directory.exists() else 0, 0))
    for path in workflow_files(dirs, []):
        try:
            stat = path.stat()
        except OSError:
            continue  # removed between listing and stat: the next poll sees it gone
        entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


class LiveCatalog:
    """The current catalog, and the definitions of earlier loads still in use."""

    def __init__(self, load: Callable[[], Catalog], dirs: list[Path]) -> None:
        self._load = load
        self.dirs = list(dirs)
        self.fingerprint = catalog_fingerprint(self.dirs)
        self.current = load()
        self.generation = 1
        self._kept: dict[DefinitionKey, DeployedWorkflow] = {}

    def by_id(self, workflow_id: str) -> DeployedWorkflow | None:
        """The workflow with this ID in the current catalog (no authorization check)."""
        return self.current.by_id(workflow_id)

    def runnable(self, workflow_id: str) -> DeployedWorkflow | None:
        """What an execution of this workflow ID runs now: a workflow or a deployment."""
        return self.current.runnable(workflow_id)

    def definition(self, workflow_id: str, digest: str) -> DeployedWorkflow | None:
        """The definition an execution was triggered with, if this process still has it."""
        current = self.current.runnable(workflow_id)
        if current is not None and current.digest == digest:
            return current
        return self._kept.get((workflow_id, digest))

    def reload(self, in_use: Collection[DefinitionKey] = ()) -> Catalog:
        """Load the files again and swap the catalog in; keep the definitions ``in_use``.

        ``in_use`` names the (workflow ID, digest) pairs of executions not finished yet; the
        previous catalog's definitions are kept too, for a trigger that read the old catalog
        and records its execution while this reload happens.
        """
        fingerprint = catalog_fingerprint(self.dirs)
        new = self._load()
        previous = self.current
        wanted = set(in_use)
        kept = {key: wf for key, wf in self._kept.items() if key in wanted}
        for workflow in [*previous.workflows.values(), *previous.deployments.values()]:
            kept[(workflow.id, workflow.digest)] = workflow
        self._kept = kept
        self.current = new  # the swap: one assignment
        self.fingerprint = fingerprint
        self.generation += 1
        added = sorted(set(new.workflows) - set(previous.workflows))
        removed = sorted(set(previous.workflows) - set(new.workflows))
        log.info(
            "catalog reloaded: %d workflows (%d added, %d removed), %d files refused",
            len(new.workflows),
            len(added),
            len(removed),
            len(new.refused),
        )
        return new

    def changed(self) -> bool:
        """Whether a workflow file was added, changed or removed since the last load."""
        return catalog_fingerprint(self.dirs) != self.fingerprint
