"""Removing one finished execution's data, kind by kind: used by the retention sweep and by
``DELETE /executions/{id}/data``.

What is removed, and how it stays inside its place:

- ``work_dir``: ``<data_dir>/work/<execution id>`` on this host. The path is built from the
  configured root and the execution ID (checked to be one plain name), never read back from the
  database; ``shutil.rmtree`` removes symbolic links inside the tree without following them
  (on Linux it works through directory file descriptors, see ``rmtree.avoids_symlink_attacks``),
  and a working directory that is itself a link is unlinked, not followed.
- ``cluster_work_dir``: ``<work_root>/executions/<execution id>`` on the cluster, removed over
  SSH as the execution's own cluster account with its own key, so it can never touch more than
  that account may. The path is built the same way, every word is quoted, and ``rm -rf`` (GNU
  and BSD alike) removes the links it meets in the tree instead of following them; a directory
  that is itself a link is unlinked.
- ``logs``: the execution's log entries.
- ``outputs``: ``<results_dir>/<execution id>`` (the result store's files) and their rows.

A kind that cannot be removed now (cluster unreachable, key store down) is left as it is and
reported; the others go on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hpcwaas.engine.cluster_keys import ClusterKeys, execution_target
from hpcwaas.engine.places import cluster_work_dir
from hpcwaas.secrets.base import KeyStore
from hpcwaas.settings import Settings, SlurmEnvironment
from hpcwaas.store import data_removal as store
from hpcwaas.store.data_removal import DataKind
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord
from hpcwaas.transports.errors import CommandFailed, TransportError, TransportUnavailable
from hpcwaas.transports.ssh import SshPool

log = logging.getLogger(__name__)

# Execution IDs are UUIDs; anything else must not become part of a path to remove.
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# Seconds the removal of one cluster directory may take.
REMOTE_TIMEOUT = 300.0


class RemovalRefused(Exception):
    """The data of this execution cannot be removed by us at all (the message says why)."""


@dataclass
class RemovalOutcome:
    """What ``DataRemover.remove`` did for one execution."""

    removed: list[DataKind] = field(default_factory=list)
    # kinds left in place, and why (to retry later)
    failed: dict[DataKind, str] = field(default_factory=dict)
    log_entries: int = 0
    output_files: int = 0
    # the cluster of a failure that will fail the same way for its other executions
    unreachable: str | None = None


def _check_id(execution_id: str) -> None:
    if not _PLAIN_ID.fullmatch(execution_id):
        raise RemovalRefused(f"execution ID {execution_id!r} cannot name a directory to remove")


def _remove_tree(path: Path) -> bool:
    """Remove ``path`` (a link itself, not what it points to); whether anything was there."""
    if path.is_symlink():
        path.unlink()
        return True
    if not path.exists():
        return False
    shutil.rmtree(path)
    return True


def _count_files(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return 0
    return sum(len(files) for _, _, files in os.walk(path))


class DataRemover:
    """Removes kinds of data of finished executions; holds its own SSH connections."""

    def __init__(self, db: Database, settings: Settings, keystore: KeyStore | None) -> None:
        self._db = db
        self._settings = settings
        self._keystore = keystore
        self._pools: dict[str, tuple[ClusterKeys, SshPool]] = {}

    def applicable(self, record: ExecutionRecord) -> list[DataKind]:
        """The kinds this execution can have: a directory on each environment its steps ran
        on (local, or on clusters), its logs and outputs."""
        clusters = self._clusters_of(record)
        local = len(clusters) < 1 + len(record.places or {})
        places = [DataKind.WORK_DIR] if local else []
        places += [DataKind.CLUSTER_WORK_DIR] if clusters else []
        return [*places, DataKind.LOGS, DataKind.OUTPUTS]

    def _clusters_of(self, record: ExecutionRecord) -> dict[str, SlurmEnvironment]:
        """The environments of the execution (its own, and those its steps named) that are
        configured clusters."""
        named = [record.environment, *(record.places or {})]
        configs = {e: self._settings.environments.get(e) for e in named}
        return {e: c for e, c in configs.items() if isinstance(c, SlurmEnvironment)}

    def slurm_environments(self) -> list[str]:
        """The configured environments reached over SSH."""
        return [
            name
            for name, config in self._settings.environments.items()
            if isinstance(config, SlurmEnvironment)
        ]

    async def remove(
        self, record: ExecutionRecord, kinds: list[DataKind], *, by: str
    ) -> RemovalOutcome:
        """Remove ``kinds`` of a finished execution's data and record what was removed.

        Kinds already removed are skipped; a kind that fails is left for a later attempt.
        """
        _check_id(record.id)
        if not record.status.terminal:
            raise RemovalRefused(f"execution {record.id} is {record.status.value}, not finished")
        outcome = RemovalOutcome()
        todo = [k for k in kinds if store.removed_at(record, k) is None]
        files_done: list[DataKind] = []
        for kind in todo:
            try:
                if kind is DataKind.WORK_DIR:
                    await asyncio.to_thread(self._remove_local_work_dir, record.id)
                elif kind is DataKind.CLUSTER_WORK_DIR:
                    for environment, config in self._cluster_dirs_of(record).items():
                        try:
                            await self._remove_cluster_work_dir(record, environment, config)
                        except TransportUnavailable:
                            outcome.unreachable = environment
                            raise
                elif kind is DataKind.OUTPUTS:
                    outcome.output_files = await asyncio.to_thread(self._remove_results, record.id)
                else:
                    continue  # rows only: removed in the transaction below
                files_done.append(kind)
            except (TransportError, OSError) as exc:
                outcome.failed[kind] = _reason(exc)
        removing = [k for k in todo if k not in outcome.failed]
        if not removing:
            return outcome
        async with self._db.write() as conn:
            if DataKind.LOGS in removing:
                outcome.log_entries = await store.delete_logs(conn, record.id)
            if DataKind.OUTPUTS in removing:
                await store.delete_output_rows(conn, record.id)
            await store.mark_removed(conn, record.id, removing, by=by, at=datetime.now(UTC))
        outcome.removed = removing
        return outcome

    async def close(self) -> None:
        """Close the SSH connections."""
        for keys, pool in self._pools.values():
            await pool.close()
            await keys.aclose()
        self._pools.clear()

    # -- the kinds ---------------------------------------------------------------------------

    def _remove_local_work_dir(self, execution_id: str) -> None:
        _remove_tree(self._settings.work_dir / execution_id)

    def _remove_results(self, execution_id: str) -> int:
        path = self._settings.results_root / execution_id
        count = _count_files(path)
        _remove_tree(path)
        return count

    def _cluster_dirs_of(self, record: ExecutionRecord) -> dict[str, SlurmEnvironment]:
        """The clusters whose directory of the execution is removed: those configured among
        its environments; RemovalRefused when its own is no longer a configured cluster."""
        clusters = self._clusters_of(record)
        if record.places is None and record.environment not in clusters:
            raise RemovalRefused(f"environment {record.environment} is not a configured cluster")
        return clusters

    async def _remove_cluster_work_dir(
        self, record: ExecutionRecord, environment: str, config: SlurmEnvironment
    ) -> None:
        login, key_id = record.account_on(environment)
        if not login or not key_id:
            return  # it never reached the cluster: no directory was made there
        target = execution_target(config, login, key_id, record.id)
        if environment not in self._pools:
            keys = ClusterKeys(self._db, self._keystore, environment, config)
            self._pools[environment] = (
                keys,
                SshPool(keys, max_sessions=config.max_sessions, idle_seconds=60),
            )
        _, pool = self._pools[environment]
        directory = shlex.quote(cluster_work_dir(config, record.id))
        command = (
            f"d={directory}; "
            'if [ -L "$d" ]; then rm -f -- "$d"; '
            'elif [ -e "$d" ]; then rm -rf -- "$d"; fi'
        )
        result = await pool.transport(target).run(command, timeout=REMOTE_TIMEOUT)
        if result.exit_code != 0:
            raise CommandFailed(
                f"removing {cluster_work_dir(config, record.id)} on {target.where} failed "
                f"(exit code {result.exit_code}): {result.stderr.strip()[:200]}"
            )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__
