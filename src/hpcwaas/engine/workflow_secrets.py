"""The workflow's ``secrets:``: values read from the key store when an execution starts.

They live in the runner's memory only: never in the database, masked in logs and outputs like
secret inputs, and delivered to steps through their environment (or a stage_in URL).
"""

from __future__ import annotations

from collections.abc import Mapping

from hpcwaas.catalog.model import KeyStoreSecretSpec
from hpcwaas.secrets.base import KeyStore


class WorkflowSecretMissing(Exception):
    """A secret the workflow names is not in the key store; the message names no value."""


async def read_workflow_secrets(
    keystore: KeyStore | None, specs: Mapping[str, KeyStoreSecretSpec]
) -> dict[str, str]:
    """The value of each named secret; WorkflowSecretMissing for the first one not found.

    KeyStoreUnavailable (from the key store) when it cannot be reached.
    """
    if not specs:
        return {}
    if keystore is None:
        raise WorkflowSecretMissing("the workflow uses secrets, but no key store is configured")
    values: dict[str, str] = {}
    entries: dict[str, dict[str, str] | None] = {}
    for name, spec in specs.items():
        if spec.path not in entries:  # one read per entry, however many keys it gives
            entries[spec.path] = await keystore.get(spec.path)
        entry = entries[spec.path]
        if entry is None:
            raise WorkflowSecretMissing(
                f"secret {name!r}: the key store has no entry at path {spec.path!r}; "
                f"an operator can add it with `hpcwaas-api secrets put {spec.path} {spec.key}`"
            )
        if spec.key not in entry:
            raise WorkflowSecretMissing(
                f"secret {name!r}: the key store entry at path {spec.path!r} has no key "
                f"{spec.key!r}; an operator can add it with "
                f"`hpcwaas-api secrets put {spec.path} {spec.key}`"
            )
        values[name] = str(entry[spec.key])
    return values
