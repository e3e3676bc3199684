"""How many of hpcwaas's modules one trigger crosses, from the request to the execution's end.

Run from the project root: ``python -m tests.bench.trigger_path``. The embedded default runs
in-process (tests/inprocess_support.py) and a profile hook on its event loop's thread records
every call into an ``hpcwaas`` module while ``demo@local@hello`` is triggered and runs to its
end. It prints the modules crossed, how often the path came back to a module it had left
(a measure of how far the way wanders), and the modules by package. The trace ends
SETTLE_SECONDS after the trigger, with no other request meanwhile.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from tests.inprocess_support import InProcessServer

WORKFLOW = "demo@local@hello"
SETTLE_SECONDS = 3.0  # the hello workflow ends well within this


def main() -> None:
    """Trace one trigger and print what it crossed."""
    with tempfile.TemporaryDirectory() as tmp:
        server = InProcessServer(Path(tmp) / "data")
        try:
            token = server.token("tracer")
            path: list[str] = []

            def profile(frame: FrameType, event: str, arg: Any) -> None:
                module = str(frame.f_globals.get("__name__", ""))
                if event == "call" and module.startswith("hpcwaas."):
                    if not path or path[-1] != module:
                        path.append(module)

            with server.client(token) as api:
                server.on_loop(sys.setprofile, profile)
                try:
                    answer = api.post(f"/workflows/{WORKFLOW}", json={"inputs": {"name": "Ada"}})
                    time.sleep(SETTLE_SECONDS)  # no request meanwhile: only the run is traced
                finally:
                    server.on_loop(sys.setprofile, None)
                execution_id = answer.headers["location"].rsplit("/", 1)[1]
                status = api.get(f"/executions/{execution_id}").json()["status"]
        finally:
            server.stop()
    modules = Counter(path)
    returns = len(path) - len(modules)
    packages = Counter(m.split(".")[1] if m.count(".") > 1 else "(top)" for m in modules)
    print(f"{WORKFLOW} ended {status}")
    print(f"modules crossed: {len(modules)}; returns to a module already left: {returns}")
    print("by package: " + ", ".join(f"{p} {n}" for p, n in sorted(packages.items())))


if __name__ == "__main__":
    main()
