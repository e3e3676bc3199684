"""`hpcwaas-api workflows validate`: every problem with its file and line, exit 1 on any."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpcwaas.server.admin import main

GOOD = """\
application: good
environments: [local]
expose: [hello]
workflows:
  hello:
    inputs:
      name: {type: string, default: world}
    steps:
      greet:
        kind: shell
        run: echo Hello {{ inputs.name }}
"""

# One mistake of each kind the format guide lists, each on a known line.
BAD = """\
application: bad
environments: [local]
expose: [wf]
workflows:
  wf:
    inputs:
      n: {type: integer, default: three}
    steps:
      first:
        kind: shell
        needs: [second]
        run: echo {{ inputs.missing }}
      second:
        kind: shell
        needs: [first]
        run: echo second
      third:
        kind: shell
        needs: [nowhere]
        run: echo third
"""

SLURM = """\
application: batch
environments: [local, hpc]
expose: [job]
workflows:
  job:
    steps:
      compute: {kind: slurm, script: srun hostname}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["workflows", "validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_valid_file_exits_0_with_a_one_line_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "good.yaml", GOOD)
    code, out, _ = _validate(capsys, str(path))
    assert code == 0
    assert out.splitlines() == [f"{path}: ok, 1 workflow(s)"]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (7, "the default does not fit: expected an integer"),
        (12, "undefined input 'missing'"),
        (19, "needs unknown step 'nowhere'"),
        (11, "need each other in a cycle (first -> second -> first)"),
    ],
    ids=["default-type", "undefined-input", "unknown-need", "cycle"],
)
def test_each_mistake_is_reported_with_its_line_and_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: int, words: str
) -> None:
    path = _write(tmp_path, "bad.yaml", BAD)
    code, out, _ = _validate(capsys, str(path))
    assert code == 1
    matching = [row for row in out.splitlines() if words in row]
    assert len(matching) == 1, out
    assert matching[0].startswith(f"{path}:{line}: ")
    assert "(hint: " in matching[0]


def test_every_problem_of_every_file_is_listed_and_good_files_still_summarized(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path, "bad.yaml", BAD)
    good = _write(tmp_path, "good.yaml", GOOD)
    code, out, err = _validate(capsys, str(bad), str(good))
    assert code == 1
    assert sum(1 for row in out.splitlines() if row.startswith(f"{bad}:")) == 4
    assert f"{good}: ok, 1 workflow(s)" in out
    assert "4 problem(s) found" in err


def test_yaml_syntax_error_is_reported_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "broken.yaml", "application: x\nenvironments: [local\n")
    code, out, _ = _validate(capsys, str(path))
    assert code == 1
    assert out.startswith(f"{path}:")
    assert "(hint: fix the YAML syntax" in out


def test_json_output_gives_file_line_message_and_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path, "bad.yaml", BAD)
    good = _write(tmp_path, "good.yaml", GOOD)
    code, out, _ = _validate(capsys, "--output", "json", str(bad), str(good))
    assert code == 1
    report = json.loads(out)
    files = {entry["file"]: entry for entry in report["files"]}
    assert files[str(good)] == {
        "file": str(good),
        "loaded": True,
        "workflows": ["good@local@hello"],
        "problems": [],
    }
    problems = files[str(bad)]["problems"]
    assert files[str(bad)]["loaded"] is False
    assert {p["line"] for p in problems} == {7, 11, 12, 19}
    assert all(p["hint"] and p["severity"] == "error" for p in problems)
    assert report["errors"] == 4


def test_without_a_config_the_files_environments_are_taken_as_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "batch.yaml", SLURM)
    code, out, _ = _validate(capsys, str(path))
    assert code == 0, out
    assert "2 workflow(s)" in out


def test_with_a_config_environments_are_checked_against_the_configured_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "batch.yaml", SLURM)
    config = _write(
        tmp_path,
        "server.yaml",
        f"data_dir: {tmp_path / 'data'}\nenvironments:\n  local: {{kind: local}}\n",
    )
    code, out, _ = _validate(capsys, "--config", str(config), str(path))
    assert code == 1
    # `local` is configured but cannot run slurm steps; `hpc` is not configured at all.
    assert f"{path}:7: workflow 'job': step 'compute' of kind slurm cannot run" in out
    assert f"{path}:2: warning: application 'batch' names environment 'hpc'" in out


def test_a_directory_is_validated_file_by_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, "good.yaml", GOOD)
    _write(tmp_path, "notes.txt", "not a workflow file")
    code, out, _ = _validate(capsys, str(tmp_path))
    assert code == 0
    assert out.splitlines() == [f"{tmp_path / 'good.yaml'}: ok, 1 workflow(s)"]


def test_a_missing_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _validate(capsys, str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "does not exist" in out
