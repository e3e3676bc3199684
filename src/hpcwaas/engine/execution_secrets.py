"""One execution's secrets: its secret inputs and the workflow's ``secrets:`` from the key store.

Read when the execution starts, kept in memory only, masked wherever steps print or write,
and (for secret inputs) deleted from the key store once the execution is over.
"""

from __future__ import annotations

import logging

from hpcwaas.catalog.model import WorkflowSpec
from hpcwaas.engine.secret_inputs import forget_secrets, load_secrets
from hpcwaas.engine.workflow_secrets import WorkflowSecretMissing, read_workflow_secrets
from hpcwaas.secrets.base import KeyStore, KeyStoreUnavailable
from hpcwaas.store import executions as store_executions
from hpcwaas.store.database import Database

log = logging.getLogger(__name__)


class ExecutionSecrets:
    """The secrets one execution's steps may use, and the map that masks them."""

    def __init__(
        self, *, db: Database, keystore: KeyStore | None, execution_id: str, spec: WorkflowSpec
    ) -> None:
        self._db = db
        self._keystore = keystore
        self._execution_id = execution_id
        self._spec = spec
        self.inputs: dict[str, str] = {}  # secret inputs, by input name
        self.workflow_secrets: dict[str, str] = {}  # the workflow's secrets:, by name
        self.hidden: dict[str, str] = {}  # both: masked in what steps print and write

    def _has_secret_inputs(self) -> bool:
        return any(spec.type == "secret" for spec in self._spec.inputs.values())

    async def load(self) -> str | None:
        """Read the execution's secrets; why the execution cannot run if they cannot be."""
        try:
            if self._has_secret_inputs():
                self.inputs = await load_secrets(self._keystore, self._execution_id)
            self.workflow_secrets = await read_workflow_secrets(self._keystore, self._spec.secrets)
        except KeyStoreUnavailable as exc:
            return f"its secrets cannot be read from the key store: {exc}"
        except WorkflowSecretMissing as exc:
            return str(exc)
        self.hidden = {
            **{f"inputs.{k}": v for k, v in self.inputs.items()},
            **{f"secrets.{k}": v for k, v in self.workflow_secrets.items()},
        }
        return None

    async def forget(self) -> None:
        """Delete the execution's secrets once it is over (not when it runs on after a stop)."""
        if not self._has_secret_inputs():
            return
        try:
            async with self._db.read() as conn:
                record = await store_executions.get_execution(conn, self._execution_id)
            if record is None or record.status.terminal:
                await forget_secrets(self._keystore, self._execution_id)
        except Exception:
            log.exception("execution %s: its secrets could not be deleted", self._execution_id)
