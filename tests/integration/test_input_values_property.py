"""Property: any workflow input value reaches the step exactly, and nothing else runs.

Each value is written by the step with ``printf '%s' {{ inputs.x }} > x.txt`` and comes
back as an output of the execution, triggered through the REST API of a real server on
the ``local`` environment. The values mix shell syntax (quotes, ``$()``, backticks,
``;``, ``&&``, newlines, globs, ``~``, a leading ``-``), non-ASCII text and values up to
the input size limit. Every command a value smuggles in would create a marker file of
its own: none may exist afterwards. A value holding a NUL (which no process can receive)
is refused with a 400 naming the input.

The same property over SSH on the loopback cluster is in test_cluster_input_values.py.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.conftest import LiveServer, free_port, wait_for_status

# Four values per execution: each run costs a subprocess, so values travel in batches.
NAMES = ("a", "b", "c", "d")
MAX_INPUT_BYTES = 64 * 1024  # limits.max_input_bytes, the default
EXAMPLES = int(os.environ.get("HPCWAAS_PROPERTY_EXAMPLES", "20"))

CATALOG = f"""
application: quoting
environments: [local]
expose: [echo]
workflows:
  echo:
    inputs:
{chr(10).join(f'      {n}: {{type: string, default: ""}}' for n in NAMES)}
    steps:
      write:
        kind: shell
        run: |
{chr(10).join(f"          printf '%s' {{{{ inputs.{n} }}}} > {n}.txt" for n in NAMES)}
    outputs:
{chr(10).join(f"      {n}: {{step: write, path: {n}.txt}}" for n in NAMES)}
"""

# Shell syntax a value may carry; {m} is a marker file that exists only if a command ran.
HOSTILE = [
    "$(touch {m})",
    "`touch {m}`",
    "; touch {m}",
    "&& touch {m}",
    "|| touch {m}",
    "| touch {m}",
    "\ntouch {m}\n",
    "'; touch {m}; '",
    '"; touch {m}; "',
    "$'\\x27'; touch {m}",
    "${{IFS}}touch${{IFS}}{m}",
    "> {m}",
    "*",
    "~",
    "~root",
    "-n",
    "--help",
    "-",
    "$HOME",
    "${{PATH}}",
    "\\",
    "'",
    '"',
    "%s%d%n",
    "\t",
    "\r\n",
    "!!",
    "#",
    "{{{{ inputs.a }}}}",
    "{{% raw %}}",
    "Grüße, 東京 🚀",
]

WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "hpcwaas-quoting-markers"


def values(marker_dir: Path) -> st.SearchStrategy[tuple[str, list[Path]]]:
    """A value built of hostile fragments and free text, with the markers it names."""
    free = st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=40,
    )

    @st.composite
    def build(draw: st.DrawFn) -> tuple[str, list[Path]]:
        parts: list[str] = []
        markers: list[Path] = []
        for _ in range(draw(st.integers(min_value=0, max_value=6))):
            if draw(st.booleans()):
                marker = marker_dir / uuid.uuid4().hex
                markers.append(marker)
                parts.append(draw(st.sampled_from(HOSTILE)).format(m=marker))
            else:
                parts.append(draw(free))
        return "".join(parts), markers

    return build()


@pytest.fixture(scope="module")
def quoting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("quoting")
    catalog = root / "catalog"
    catalog.mkdir()
    (catalog / "quoting.yaml").write_text(CATALOG)
    live = LiveServer(root / "data", free_port())
    live.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def quoting_api(quoting_server: LiveServer) -> Iterator[httpx.Client]:
    with quoting_server.client(quoting_server.token("quoter")) as client:
        yield client


def run_values(api: httpx.Client, inputs: dict[str, str]) -> dict[str, object]:
    """Trigger the echo workflow with these inputs; the finished execution."""
    made = api.post("/workflows/quoting@local@echo", json={"inputs": inputs})
    assert made.status_code == 201, made.text
    execution_id = made.headers["location"].rsplit("/", 1)[1]
    return wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=60)


MARKERS = WORK / "local"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(values(MARKERS), min_size=len(NAMES), max_size=len(NAMES)))
@example(batch=[("'" * MAX_INPUT_BYTES, []), ("$(id)" * 1000, []), ("-", []), ("", [])])
@example(batch=[("é" * (MAX_INPUT_BYTES // 2), []), ("`id`\n" * 100, []), ("*", []), ("~", [])])
def test_any_input_value_reaches_the_step_exactly_and_runs_nothing(
    quoting_api: httpx.Client, batch: list[tuple[str, list[Path]]]
) -> None:
    MARKERS.mkdir(parents=True, exist_ok=True)
    inputs = {name: value for name, (value, _) in zip(NAMES, batch, strict=True)}
    body = run_values(quoting_api, inputs)
    assert body["status"] == "SUCCEEDED", body
    outputs = body["outputs"]
    assert isinstance(outputs, dict)
    for name, value in inputs.items():
        assert outputs[name] == value, f"input {name} came back changed"
    for _, markers in batch:
        for marker in markers:
            assert not marker.exists(), f"a value ran a command: {marker} was created"


@given(
    before=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    after=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
)
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_value_holding_a_nul_is_refused_with_a_400_naming_the_input(
    quoting_api: httpx.Client, before: str, after: str
) -> None:
    answer = quoting_api.post(
        "/workflows/quoting@local@echo", json={"inputs": {"b": before + "\x00" + after}}
    )
    assert answer.status_code == 400, answer.text
    detail = answer.json()["errors"][0]["detail"]
    assert "'b'" in detail and "NUL" in detail, detail
