"""Process-wide metrics of the engine, transports and key stores (Prometheus).

Kept apart from the web server so that the layers below it record metrics without
importing it; ``hpcwaas.server.metrics`` serves this registry at ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)

SLURM_POLLS = Counter(
    "hpcwaas_slurm_polls",
    "squeue polls of a Slurm environment's login node.",
    ["environment"],
    registry=PROCESS_REGISTRY,
)
SLURM_POLL_DURATION = Histogram(
    "hpcwaas_slurm_poll_duration_seconds",
    "Duration of one poll of a Slurm environment (squeue and what follows).",
    ["environment"],
    registry=PROCESS_REGISTRY,
)
SSH_CONNECTIONS_OPENED = Counter(
    "hpcwaas_ssh_connections_opened", "SSH connections opened.", registry=PROCESS_REGISTRY
)
SSH_CONNECTION_FAILURES = Counter(
    "hpcwaas_ssh_connection_failures",
    "SSH connections that could not be opened.",
    registry=PROCESS_REGISTRY,
)
SSH_CONNECTIONS_OPEN = Gauge(
    "hpcwaas_ssh_connections_open",
    "SSH connections currently held open by the pool.",
    registry=PROCESS_REGISTRY,
)
KEY_STORE_CALLS = Counter(
    "hpcwaas_key_store_calls",
    "Key store calls, by operation (put, get, delete).",
    ["operation"],
    registry=PROCESS_REGISTRY,
)
KEY_STORE_ERRORS = Counter(
    "hpcwaas_key_store_errors",
    "Key store calls that raised, by operation (put, get, delete).",
    ["operation"],
    registry=PROCESS_REGISTRY,
)
for _operation in ("put", "get", "delete"):  # shown at 0 before the first call
    KEY_STORE_CALLS.labels(operation=_operation)
    KEY_STORE_ERRORS.labels(operation=_operation)
LOGS_LONG_POLLS_WAITING = Gauge(
    "hpcwaas_logs_long_polls_waiting",
    "Requests to the logs route waiting for new entries.",
    registry=PROCESS_REGISTRY,
)
