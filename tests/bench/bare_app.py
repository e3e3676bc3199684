"""A bare FastAPI endpoint returning a constant, served as `hpcwaas-api serve` serves.

The reference of the reads benchmark (bench_api.py): uvicorn with uvloop and httptools, no
access log, no server header. Usage: python bare_app.py PORT
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn
import uvloop
from fastapi import FastAPI

app = FastAPI()


@app.get("/constant")
async def constant() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
