"""Secret inputs: kept in the key store for the life of one execution, never in the database.

At trigger the values of an execution's ``secret`` inputs go to the key store under
``execution-secrets/<execution id>`` and the stored inputs hold ``[secret]`` instead. The
runner reads them back to render the steps' environments, masks them in the lines steps
print, and deletes them when the execution ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpcwaas.catalog.model import SECRET_PLACEHOLDER, WorkflowSpec
from hpcwaas.secrets.base import KeyStore


def secret_inputs_path(execution_id: str) -> str:
    """Where the key store keeps one execution's secret inputs."""
    return f"execution-secrets/{execution_id}"


def split_secrets(
    spec: WorkflowSpec, inputs: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(inputs to store, with placeholders; the secret values by input name)."""
    secrets = {
        name: str(value)
        for name, value in inputs.items()
        if name in spec.inputs and spec.inputs[name].type == "secret" and value is not None
    }
    stored = {name: SECRET_PLACEHOLDER if name in secrets else v for name, v in inputs.items()}
    return stored, secrets


async def load_secrets(keystore: KeyStore | None, execution_id: str) -> dict[str, str]:
    """The execution's secret inputs ({} if it has none)."""
    if keystore is None:
        return {}
    return dict(await keystore.get(secret_inputs_path(execution_id)) or {})


async def forget_secrets(keystore: KeyStore | None, execution_id: str) -> None:
    """Delete the execution's secret inputs from the key store (nothing if there are none)."""
    if keystore is not None:
        await keystore.delete(secret_inputs_path(execution_id))


def mask(text: str, secrets: Mapping[str, str]) -> str:
    """``text`` with every secret value replaced by ``[secret]``."""
    # Longest first, so that a secret holding another is masked whole.
    for value in sorted(secrets.values(), key=len, reverse=True):
        if value:
            text = text.replace(value, SECRET_PLACEHOLDER)
    return text
