"""DAGs of the dls tests: one that fails, one that runs a while, one quick (benchmarks)."""

from __future__ import annotations

import time
from datetime import datetime

from airflow.decorators import dag, task
from airflow.models.param import Param

START = datetime(2024, 1, 1)


@dag(dag_id="hpcwaas_test_fail", schedule=None, start_date=START, catchup=False,
     params={"reason": Param("the data is not there", type="string")})  # fmt: skip
def hpcwaas_test_fail() -> None:
    @task(retries=0)
    def refuse(**context: object) -> None:
        params = context["params"]
        assert isinstance(params, dict)
        print("about to fail")
        raise RuntimeError(params["reason"])

    refuse()


@dag(dag_id="hpcwaas_test_sleep", schedule=None, start_date=START, catchup=False,
     params={"seconds": Param(30, type="integer")})  # fmt: skip
def hpcwaas_test_sleep() -> None:
    @task
    def first(**context: object) -> None:
        print("first task done")

    @task
    def wait(**context: object) -> None:
        params = context["params"]
        assert isinstance(params, dict)
        for second in range(params["seconds"]):
            print(f"slept {second} s")
            time.sleep(1)

    first() >> wait()


@dag(dag_id="hpcwaas_test_quick", schedule=None, start_date=START, catchup=False,
     max_active_runs=400, params={"value": Param("", type="string")})  # fmt: skip
def hpcwaas_test_quick() -> None:
    @task
    def echo(**context: object) -> None:
        params = context["params"]
        assert isinstance(params, dict)
        print(f"value is {params['value']!r}")

    echo()


hpcwaas_test_fail()
hpcwaas_test_sleep()
hpcwaas_test_quick()
