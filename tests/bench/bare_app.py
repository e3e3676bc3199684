"""A bare FastAPI endpoint returning a constant, served as `hpcwaas-api serve` serves.

The reference of the reads benchmark (bench_api.py): uvicorn with uvloop and httptools, no
access log, no server header. Usage: python bare_app.py PORT [--hpcwaas-layers]

With --hpcwaas-layers the same endpoint sits behind what hpcwaas puts around every request:
its four middlewares (security headers, request ID, metrics, body limit) and its access log
line (written to standard error). The benchmark reports it to show what of the distance to
the bare endpoint is that layer rather than routes' own work.
"""

from __future__ import annotations

import asyncio
import gc
import sys

import uvicorn
import uvloop
from fastapi import FastAPI

app = FastAPI()


@app.get("/constant")
async def constant() -> dict[str, str]:
    return {"status": "ok"}


def _add_hpcwaas_layers() -> None:
    from hpcwaas.logging_setup import configure_logging
    from hpcwaas.server.bodylimit import BodySizeLimit
    from hpcwaas.server.metrics import AppMetrics, HttpMetrics
    from hpcwaas.server.requestid import RequestId
    from hpcwaas.server.security_headers import SecurityHeaders

    configure_logging("info")
    # In the order hpcwaas.server.app adds them (the last added is outermost).
    app.add_middleware(BodySizeLimit, max_bytes=1_000_000)
    app.add_middleware(HttpMetrics, metrics=AppMetrics())
    app.add_middleware(RequestId)
    app.add_middleware(SecurityHeaders)


def main() -> None:
    if "--hpcwaas-layers" in sys.argv[2:]:
        _add_hpcwaas_layers()
    # As hpcwaas-api serve does before serving.
    gc.collect()
    gc.freeze()
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
