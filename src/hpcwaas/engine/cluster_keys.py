"""The SSH keys that take executions onto clusters: where, loaded from the key store, audited.

A private key lives in the SSH client's memory only; each run of an execution records once,
in the audit log, which key it used, on which host and as whom.
"""

from __future__ import annotations

import logging

from hpcwaas.secrets.base import KeyStore, KeyStoreUnavailable, ssh_key_path
from hpcwaas.settings import SlurmEnvironment
from hpcwaas.store import audit as audit_store
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord
from hpcwaas.transports.errors import AccessRefused, TransportUnavailable
from hpcwaas.transports.ssh import SshTarget

log = logging.getLogger(__name__)


def execution_target(config: SlurmEnvironment, login: str, key_id: str) -> SshTarget:
    """Where an execution's steps run: the cluster's login host, as the execution's account."""
    return SshTarget(
        host=config.host,
        port=config.port,
        login=login,
        key_id=key_id,
        known_hosts="\n".join(config.host_keys),
    )


async def load_ssh_key(keystore: KeyStore | None, key_id: str) -> str:
    """A private key from the key store, for the SSH client's memory only.

    A key store that cannot be reached now is retried like an unreachable cluster (up to
    the environment's ``unreachable_deadline``); a key that is gone fails the step.
    """
    if keystore is None:
        raise AccessRefused("no key store is configured")
    try:
        secret = await keystore.get(ssh_key_path(key_id))
    except KeyStoreUnavailable as exc:
        raise TransportUnavailable(f"the key store cannot be reached: {exc}") from None
    if secret is None or "privateKey" not in secret:
        raise AccessRefused(f"SSH key {key_id} is not in the key store any more")
    return secret["privateKey"]


async def record_key_use(
    db: Database, record: ExecutionRecord, target: SshTarget, failure: str | None
) -> None:
    """Audit which key an execution used, where and as whom (once per run of it)."""
    try:
        async with db.write() as conn:
            await audit_store.record(
                conn,
                actor=record.owner,
                action=audit_store.AuditAction.SSH_KEY_USE,
                target=target.key_id,
                source=audit_store.ENGINE_SOURCE,
                outcome=audit_store.Outcome.FAILURE if failure else audit_store.Outcome.SUCCESS,
                details={
                    "execution_id": record.id,
                    "host": target.host,
                    "port": target.port,
                    "login": target.login,
                    **({"reason": failure} if failure else {}),
                },
            )
    except Exception:
        # The execution goes on: its own database writes will fail loudly if the database
        # is gone; the server log keeps what the audit log could not.
        log.exception(
            "execution %s: could not audit the use of SSH key %s on %s",
            record.id,
            target.key_id,
            target.where,
        )
