"""The SSH keys that take executions onto clusters: where, loaded from the key store, audited.

A private key lives in the SSH client's memory only; each run of an execution records once,
in the audit log, which key it used, on which host and as whom.

On an environment with ``ssh_certificates``, ``ClusterKeys`` also has the site's CA sign the
key's public half for each execution: for its cluster login alone (which the user whose
account it is there must be allowed: the execution's owner, or for a deployment's step on
another environment that environment's deployment_user; checked again here against the
execution's record), with the
execution ID in the certificate's key ID, for ``ttl_seconds``. A new connection reuses the
last certificate of its execution only while more than ``renew_before_seconds`` of it are
left, so it never logs in with an expired one; a connection already open lives on past its
certificate (sshd checks it only at login). Each signing, and each refusal, is audited.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from hpcwaas.secrets.base import KeyStore, KeyStoreUnavailable, ssh_key_path
from hpcwaas.secrets.ssh_ca import SignedCertificate, SigningRefused, SigningUnavailable, SshSigner
from hpcwaas.settings import SlurmEnvironment
from hpcwaas.store import audit as audit_store
from hpcwaas.store import executions as store_executions
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord
from hpcwaas.transports.errors import AccessRefused, TransportUnavailable
from hpcwaas.transports.ssh import ClientKey, SshTarget
from hpcwaas.transports.ssh_connection import public_key_line

log = logging.getLogger(__name__)


def execution_target(
    config: SlurmEnvironment, login: str, key_id: str, execution_id: str
) -> SshTarget:
    """Where an execution's steps run: the cluster's login host, as the execution's account.

    With certificates the target names the execution: its connections are its own.
    """
    return SshTarget(
        host=config.host,
        port=config.port,
        login=login,
        key_id=key_id,
        known_hosts="\n".join(config.host_keys),
        execution_id=execution_id if config.ssh_certificates is not None else None,
    )


def certificate_key_id(execution_id: str) -> str:
    """The key ID of an execution's certificates, which sshd writes in the cluster's auth log."""
    return f"hpcwaas-execution-{execution_id}"


class ClusterKeys:
    """The ``KeyLoader`` of one cluster environment's SSH pool: key, and certificate if signed."""

    def __init__(
        self, db: Database, keystore: KeyStore | None, environment: str, config: SlurmEnvironment
    ) -> None:
        self._db = db
        self._keystore = keystore
        self._environment = environment
        self._certificates = config.ssh_certificates
        self._signer: SshSigner | None = None
        if self._certificates is not None:
            self._signer = SshSigner(
                self._certificates, f"environments.{environment}.ssh_certificates"
            )
        self._signed: dict[SshTarget, SignedCertificate] = {}

    async def __call__(self, target: SshTarget) -> ClientKey:
        """What a new connection to ``target`` logs in with."""
        pem = await load_ssh_key(self._keystore, target.key_id)
        if self._signer is None or self._certificates is None:
            return ClientKey(pem)
        signed = self._signed.get(target)
        if signed is None or signed.seconds_left() <= self._certificates.renew_before_seconds:
            signed = await self._sign(self._signer, target, pem)
            self._signed = {t: c for t, c in self._signed.items() if c.seconds_left() > 0}
            self._signed[target] = signed
        return ClientKey(pem, signed.line)

    async def aclose(self) -> None:
        """Close the signer's Vault session."""
        if self._signer is not None:
            await self._signer.aclose()

    async def _sign(self, signer: SshSigner, target: SshTarget, pem: str) -> SignedCertificate:
        record = await self._execution(target)
        try:
            self._check_principal(record, target)
            signed = await signer.sign(
                public_key_line(pem),
                principal=target.login,
                key_id=certificate_key_id(record.id),
            )
        except SigningUnavailable as exc:
            raise TransportUnavailable(f"the SSH CA cannot be reached: {exc}") from None
        except (SigningRefused, AccessRefused, ValueError) as exc:
            await self._audit(record, target, {"reason": str(exc)}, failed=True)
            raise AccessRefused(str(exc)) from None
        valid_until = datetime.fromtimestamp(signed.valid_before, UTC)
        await self._audit(
            record,
            target,
            {"serial": f"{signed.serial:016x}", "valid_until": valid_until.isoformat()},
            failed=False,
        )
        log.info(
            "execution %s: SSH certificate %016x signed for %s, valid until %s",
            record.id,
            signed.serial,
            target.where,
            valid_until.isoformat(),
        )
        return signed

    async def _execution(self, target: SshTarget) -> ExecutionRecord:
        if target.execution_id is None:
            raise AccessRefused("a certificate is signed for an execution, and none was named")
        async with self._db.read() as conn:
            record = await store_executions.get_execution(conn, target.execution_id)
        if record is None:
            raise AccessRefused(f"execution {target.execution_id} is not recorded")
        return record

    def _check_principal(self, record: ExecutionRecord, target: SshTarget) -> None:
        """AccessRefused unless the execution runs as this login and the user whose account
        it is there (its owner; for a deployment, that environment's deployment_user) may use
        it."""
        certificates = self._certificates
        user = record.user_on(self._environment)
        if record.account_on(self._environment) != (target.login, target.key_id) or (
            certificates is None or not certificates.may_sign(user, target.login)
        ):
            raise AccessRefused(
                f"{user} may not be signed for the cluster login {target.login} on "
                f"environment {self._environment} (environments.{self._environment}."
                "ssh_certificates.logins)"
            )

    async def _audit(
        self, record: ExecutionRecord, target: SshTarget, more: dict[str, Any], *, failed: bool
    ) -> None:
        details = {"environment": self._environment, **more}
        details["certificate_key_id"] = certificate_key_id(record.id)
        await _audit_engine_event(
            self._db,
            record,
            target,
            audit_store.AuditAction.SSH_CERTIFICATE_SIGN,
            failed=failed,
            details=details,
            what="an SSH certificate signing",
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
    await _audit_engine_event(
        db,
        record,
        target,
        audit_store.AuditAction.SSH_KEY_USE,
        failed=failure is not None,
        details={"reason": failure} if failure else {},
        what=f"the use of SSH key {target.key_id} on {target.where}",
    )


async def _audit_engine_event(
    db: Database,
    record: ExecutionRecord,
    target: SshTarget,
    action: audit_store.AuditAction,
    *,
    failed: bool,
    details: dict[str, Any],
    what: str,
) -> None:
    """One audit event of the engine about an execution's cluster account.

    The execution goes on if it cannot be written: its own database writes fail loudly if
    the database is gone, and the server log keeps what the audit log could not.
    """
    try:
        async with db.write() as conn:
            await audit_store.record(
                conn,
                actor=record.owner,
                action=action,
                target=target.key_id,
                source=audit_store.ENGINE_SOURCE,
                outcome=audit_store.Outcome.FAILURE if failed else audit_store.Outcome.SUCCESS,
                details={
                    "execution_id": record.id,
                    "host": target.host,
                    "port": target.port,
                    "login": target.login,
                    **details,
                },
            )
    except Exception:
        log.exception("execution %s: could not audit %s", record.id, what)
