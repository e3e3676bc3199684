"""Building an execution's places: its environment's, and one per other environment its steps
name, each reached as the execution's account there (``ExecutionRecord.account_on``).

The SSH connections and the job tracker of a cluster environment are shared by every execution
of this engine that uses it.
"""

from __future__ import annotations

import functools

from hpcwaas.engine.cluster_keys import ClusterKeys, execution_target, record_key_use
from hpcwaas.engine.jobs import JobTracker
from hpcwaas.engine.places import ClusterPlace, LocalPlace, Place, Places
from hpcwaas.schedulers import slurm
from hpcwaas.schedulers.errors import SchedulerError
from hpcwaas.secrets.base import KeyStore
from hpcwaas.settings import EnvironmentConfig, LocalEnvironment, Settings
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord
from hpcwaas.transports.base import Transport
from hpcwaas.transports.errors import TransportError
from hpcwaas.transports.ssh import SshPool


class PlaceMaker:
    """Makes executions' places; holds each cluster environment's keys, SSH connections
    (bounded by its ``max_sessions``) and job tracker."""

    def __init__(
        self, db: Database, settings: Settings, keystore: KeyStore | None, transport: Transport
    ) -> None:
        self._db = db
        self._settings = settings
        self._keystore = keystore
        self._transport = transport  # this host's, for local places
        self._clusters: dict[str, tuple[ClusterKeys, SshPool, JobTracker]] = {}

    def places(self, record: ExecutionRecord, config: EnvironmentConfig) -> Places | str:
        """Where the execution's steps run (``config``: its environment's), or why they
        cannot."""
        home = self._place(record, record.environment, config)
        if isinstance(home, str):
            return home
        others: dict[str, Place] = {}
        for environment in record.places or {}:
            other = self._settings.environments.get(environment)
            if other is None:
                return f"environment {environment} (of some of its steps) is not configured"
            place = self._place(record, environment, other)
            if isinstance(place, str):
                return f"{place} (environment {environment})"
            others[environment] = place
        return Places(record.environment, home, others)

    async def cancel_left_jobs(self, record: ExecutionRecord) -> list[str]:
        """``scancel`` the jobs a local execution's steps left on clusters, which nobody follows
        once its server is gone (found by their comment or name); what was done, for its log."""
        config = self._settings.environments.get(record.environment)
        if config is None or not record.places:
            return []
        places = self.places(record, config)
        if isinstance(places, str):
            return [f"Its jobs on other environments could not be cancelled: {places}"]
        done: list[str] = []
        for environment, place in places.others.items():
            cluster = place.cluster
            if cluster is None:
                continue
            try:
                found = await cluster.transport.run(slurm.find_jobs_command(cluster.target.login))
                jobs = slurm.parse_find_jobs(
                    found.exit_code, found.stdout, found.stderr, execution_id=record.id
                ).jobs
                left = [job.job_id for job in jobs if not job.state.terminal]
                if left:
                    cancelled = await cluster.transport.run(slurm.scancel_command(left))
                    slurm.parse_scancel(cancelled.exit_code, cancelled.stdout, cancelled.stderr)
            except (TransportError, SchedulerError) as exc:
                done.append(f"Its jobs on {environment} could not be cancelled: {exc}")
                continue
            if left:
                done.append(f"Cancelled its job(s) {', '.join(left)} on {environment}")
        return done

    async def close(self) -> None:
        """Stop the job trackers, close the SSH connections and the signers' sessions."""
        for keys, pool, tracker in self._clusters.values():
            await tracker.close()
            await pool.close()
            await keys.aclose()
        self._clusters.clear()

    def _place(
        self, record: ExecutionRecord, environment: str, config: EnvironmentConfig
    ) -> Place | str:
        """The execution's place on ``environment``, or why it cannot have one."""
        if isinstance(config, LocalEnvironment):
            return LocalPlace(self._settings.work_dir, record.id, self._transport)
        login, key_id = record.account_on(environment)
        if not login or not key_id:
            return "no cluster account or SSH key was recorded for this execution"
        target = execution_target(config, login, key_id, record.id)
        if environment not in self._clusters:
            keys = ClusterKeys(self._db, self._keystore, environment, config)
            pool = SshPool(keys, max_sessions=config.max_sessions)
            self._clusters[environment] = (keys, pool, JobTracker(pool.transport, environment))
        _, pool, tracker = self._clusters[environment]
        return ClusterPlace(
            config,
            pool.transport(target),
            tracker,
            target,
            record.id,
            on_key_use=functools.partial(record_key_use, self._db, record),
        )
