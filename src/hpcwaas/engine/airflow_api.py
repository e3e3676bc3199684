"""Calls of Apache Airflow's stable REST API v1 (Airflow 2) that dag_run steps make.

Basic auth, JSON bodies: a run's ``conf`` is sent as JSON data, never as code. Each call
raises ``RemoteError`` with what was wrong: a refusal (unknown DAG, credentials refused,
``conf`` refused by the DAG's params) is not retryable; an unreachable server, a timeout or
a 5xx is.
"""

from __future__ import annotations

import ssl
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from hpcwaas.engine.remotesteps import RemoteError
from hpcwaas.settings import AirflowConfig

PAGE_LIMIT = 100  # Airflow's default maximum page size
# The batch endpoints, by which the requests of each are counted (``AirflowApi.pages``).
RUNS = "/dags/~/dagRuns/list"
TASK_INSTANCES = "/dags/~/dagRuns/~/taskInstances/list"


@dataclass(frozen=True)
class TaskInstance:
    """What the engine reads of one task instance."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    state: str | None

    @property
    def source(self) -> str:
        """The log source of this try: ``task[map index]/try``."""
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.task_id}{index}/{self.try_number}"


def _verify(config: AirflowConfig) -> ssl.SSLContext | bool:
    if config.ca_file is not None:
        return ssl.create_default_context(cafile=str(config.ca_file))
    return config.verify_tls


def _q(value: str) -> str:
    return quote(value, safe="")


class AirflowApi:
    """One Airflow's REST API, as one account (basic auth)."""

    def __init__(self, config: AirflowConfig, username: str, password: str) -> None:
        self.url = config.url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=f"{self.url}/api/v1",
            auth=(username, password),
            verify=_verify(config),
            timeout=config.request_timeout,
            headers={"Accept": "application/json"},
        )
        self.pages: Counter[str] = Counter()  # requests made to each batch endpoint

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"the Airflow at {self.url} cannot be reached: {exc!r}", retryable=True
            ) from None

    def _refused(self, answer: httpx.Response, what: str) -> RemoteError:
        """The error of an answer that is not a success."""
        try:
            detail = str(answer.json().get("detail") or answer.json().get("title") or "")
        except ValueError:
            detail = answer.text[:300]
        status = answer.status_code
        if status in (401, 403):
            return RemoteError(
                f"the Airflow at {self.url} refused the account of the airflow: credentials "
                f"setting ({status}) when it was asked to {what}: check the username and "
                "password in the key store and the account's role",
                retryable=False,
            )
        retryable = status >= 500 or status == 429
        return RemoteError(
            f"the Airflow at {self.url} answered {status} when asked to {what}: {detail}",
            retryable=retryable,
        )

    async def trigger(
        self, dag_id: str, run_id: str, conf: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Create the run; None when a run of that ID exists already (HTTP 409)."""
        body = {"dag_run_id": run_id, "conf": dict(conf)}
        answer = await self._call("POST", f"/dags/{_q(dag_id)}/dagRuns", json=body)
        if answer.status_code == 409:
            return None
        if answer.status_code == 404:
            raise RemoteError(
                f"the Airflow at {self.url} has no DAG {dag_id!r} (or its account cannot see "
                "it): check the step's dag_id",
                retryable=False,
            )
        if answer.status_code != 200:
            raise self._refused(answer, f"start a run of DAG {dag_id!r}")
        return dict(answer.json())

    async def get_run(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        """One run, or None when there is none of that ID."""
        answer = await self._call("GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise self._refused(answer, f"show run {run_id}")
        return dict(answer.json())

    async def fail_run(self, dag_id: str, run_id: str) -> None:
        """Set the run failed: Airflow stops its running tasks."""
        answer = await self._call(
            "PATCH", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}", json={"state": "failed"}
        )
        if answer.status_code not in (200, 404):
            raise self._refused(answer, f"stop run {run_id}")

    async def list_runs(
        self, dag_ids: list[str], since: str, states: list[str]
    ) -> list[dict[str, Any]]:
        """The runs of these DAGs in ``states`` whose logical date is ``since`` or later.

        One request per page of 100 (the batch endpoint).
        """
        body: dict[str, Any] = {
            "dag_ids": dag_ids,
            "states": states,
            "execution_date_gte": since,
            "order_by": "execution_date",
            "page_limit": PAGE_LIMIT,
        }
        return await self._pages(RUNS, body, "dag_runs", "list DAG runs")

    async def list_task_instances(
        self, dag_ids: list[str], run_ids: list[str]
    ) -> list[TaskInstance]:
        """The task instances of these runs (``/dags/~/dagRuns/~/taskInstances/list``)."""
        body: dict[str, Any] = {
            "dag_ids": dag_ids,
            "dag_run_ids": run_ids,
            "page_limit": PAGE_LIMIT,
        }
        rows = await self._pages(TASK_INSTANCES, body, "task_instances", "list task instances")
        return [
            TaskInstance(
                dag_id=row["dag_id"],
                run_id=row["dag_run_id"],
                task_id=row["task_id"],
                map_index=int(row.get("map_index", -1)),
                try_number=int(row.get("try_number") or 0),
                state=row.get("state"),
            )
            for row in rows
        ]

    async def _pages(
        self, path: str, body: dict[str, Any], field: str, what: str
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while True:
            self.pages[path] += 1
            answer = await self._call("POST", path, json={**body, "page_offset": len(rows)})
            if answer.status_code != 200:
                raise self._refused(answer, what)
            data = answer.json()
            page = list(data.get(field) or [])
            rows.extend(page)
            if len(page) < PAGE_LIMIT or len(rows) >= int(data.get("total_entries", 0)):
                return rows

    async def task_log(self, ti: TaskInstance) -> str:
        """The whole log of one try of a task instance, as text."""
        path = (
            f"/dags/{_q(ti.dag_id)}/dagRuns/{_q(ti.run_id)}/taskInstances/{_q(ti.task_id)}"
            f"/logs/{ti.try_number}"
        )
        params: dict[str, Any] = {"full_content": "true"}
        if ti.map_index >= 0:
            params["map_index"] = ti.map_index
        answer = await self._call("GET", path, params=params, headers={"Accept": "text/plain"})
        if answer.status_code == 404:
            return ""
        if answer.status_code != 200:
            raise self._refused(answer, f"read the log of task {ti.task_id}")
        return answer.text
