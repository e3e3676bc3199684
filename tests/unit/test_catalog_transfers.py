"""Workflow files with ``stage_in`` and ``stage_out`` steps: their keys and load-time checks."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_catalog_kinds import app, at, problems_of, write

from hpcwaas.catalog.kinds.stage_in import StageInStep
from hpcwaas.catalog.kinds.stage_out import StageOutStep
from hpcwaas.catalog.loader import read_application


def test_transfer_steps_load_on_local_and_cluster_environments(tmp_path: Path) -> None:
    text = app(
        """\
        fetch:
          kind: stage_in
          url: "https://example.org/{{ inputs.name }}"
          target_path: "data/{{ inputs.name }}"
          force: true
          sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
          max_bytes: 1000000
          timeout: 600
        keep:
          kind: stage_out
          needs: [fetch]
          source_path: results
          output: results
          max_bytes: 5000
          metadata: {mid: abc, register: true}
        """,
        environments="[local, hpc1]",
        inputs="{name: {type: string}}",
    )
    loaded = read_application(write(tmp_path, text))
    steps = loaded.application.workflows["w"].steps
    assert isinstance(steps["fetch"], StageInStep) and steps["fetch"].force
    assert isinstance(steps["keep"], StageOutStep)
    assert steps["keep"].metadata == {"mid": "abc", "register": True}


def test_a_url_that_is_not_http_is_refused_at_load_time_with_a_hint(tmp_path: Path) -> None:
    text = app(
        """\
        fetch:
          kind: stage_in
          url: ftp://example.org/data
          target_path: data
        """
    )
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith(at(tmp_path, 10))  # the url line
    assert "only http:// and https:// URLs can be staged in" in problem
    assert "e.g. url: https://example.org/data.csv" in problem


def test_a_bad_sha256_and_an_unknown_key_are_refused(tmp_path: Path) -> None:
    text = app(
        """\
        fetch:
          kind: stage_in
          url: https://example.org/data
          target_path: data
          sha256: abc
          forse: true
        """
    )
    problems = "\n".join(problems_of(tmp_path, text))
    assert "sha256: String should match pattern" in problems
    assert "unknown key 'forse'" in problems and "force" in problems


def test_two_stage_out_steps_storing_the_same_output_name_are_refused(tmp_path: Path) -> None:
    text = app(
        """\
        a:
          kind: stage_out
          source_path: x
          output: result
        b:
          kind: stage_out
          source_path: y
          output: result
        """
    )
    (problem,) = problems_of(tmp_path, text)
    assert "step 'b' stores output 'result', as step 'a' does" in problem


def test_templates_of_transfer_paths_are_checked_against_the_inputs(tmp_path: Path) -> None:
    text = app(
        """\
        keep:
          kind: stage_out
          source_path: "{{ inputs.missing }}"
        """
    )
    (problem,) = problems_of(tmp_path, text)
    assert "undefined input 'missing'" in problem
