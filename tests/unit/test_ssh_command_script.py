"""The script an SSH step runs, executed here by bash as the login node's shell would."""

from __future__ import annotations

import glob
import shlex
import subprocess
from pathlib import Path

import pytest

from hpcwaas.transports.ssh_command import command_script


@pytest.mark.parametrize("size", [10, 64 * 1024])
def test_a_command_of_any_length_runs_and_leaves_no_file_behind(tmp_path: Path, size: int) -> None:
    # Quoted, 64 KiB of quotes become five times longer: past what one argument may hold.
    value = "'" * size
    command = f"printf '%s' {shlex.quote(value)} > out.txt; echo done"
    before = set(glob.glob("/tmp/hpcwaas-step.*"))
    script = command_script(command, tmp_path, {"GREETING": "hi there"}, grace=1.0)
    ran = subprocess.run(
        ["/bin/bash", "-s"], input=script, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "done\n"
    assert (tmp_path / "out.txt").read_text() == value
    assert set(glob.glob("/tmp/hpcwaas-step.*")) == before
