"""Slurm command builders: every value quoted, names safe, options checked; the batch wrapper
and the remote file commands run here with bash, on hostile names and binary content."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from hpcwaas.schedulers import slurm
from hpcwaas.schedulers.remote_files import (
    exit_file_command,
    parse_exit_files,
    parse_read_chunks,
    read_chunks_command,
)
from hpcwaas.schedulers.slurm import SlurmDefaults, SlurmOptions, UnexpectedOutput
from hpcwaas.schedulers.slurm_options import check_sbatch_flag, time_to_minutes
from hpcwaas.schedulers.slurm_script import batch_script

HOSTILE = "$(touch pwned); `touch pwned2` 'q\" \nx"
EXECUTION = "3f2a9c1e-7b4d-4c8e-9f00-123456789abc"


def bash(command: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    result = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, env=env, check=False
    )
    return result.returncode, result.stdout, result.stderr.decode()


# --- names -----------------------------------------------------------------------------------


def test_job_name_is_short_safe_and_names_execution_and_step():
    assert slurm.job_name(EXECUTION, "greet") == "hw-3f2a9c1e-greet"
    long = slurm.job_name("ab cd;ef$g", "s" * 100)
    assert len(long) == 64 and long.startswith("hw-ab_cd_ef-")
    assert all(c.isalnum() or c in "_.-" for c in long)


def test_job_comment_carries_the_whole_execution_id():
    assert slurm.job_comment(EXECUTION, "greet") == f"hpcwaas:{EXECUTION}:greet"


def test_job_comment_refuses_unsafe_parts():
    with pytest.raises(ValueError):
        slurm.job_comment("a b", "s")


# --- commands quote every value ----------------------------------------------------------------


def test_squeue_command_asks_one_call_for_every_job_of_the_login():
    command = slurm.squeue_command("alice")
    words = shlex.split(command)
    assert words[0] == "squeue" and "--user=alice" in words and "--states=all" in words
    assert "--format=%i|^|%T|^|%r|^|%j|^|%k" in words


def test_hostile_login_stays_one_word_in_every_command():
    for command in (slurm.squeue_command(HOSTILE), slurm.find_jobs_command(HOSTILE)):
        assert f"--user={HOSTILE}" in shlex.split(command)


def test_sbatch_command_quotes_the_path():
    assert shlex.split(slurm.sbatch_command("/a b/x.sbatch")) == [
        "sbatch",
        "--parsable",
        "/a b/x.sbatch",
    ]


def test_sacct_scontrol_scancel_commands_take_job_ids_only():
    assert "--jobs=1,2_3" in shlex.split(slurm.sacct_command(["1", "2_3"]))
    assert shlex.split(slurm.scontrol_command("42")) == ["scontrol", "show", "job", "42"]
    assert shlex.split(slurm.scancel_command(["4", "5"])) == ["scancel", "4", "5"]
    for bad in (["1;rm -rf ~"], [], ["abc"]):
        with pytest.raises(ValueError):
            slurm.scancel_command(bad)
        with pytest.raises(ValueError):
            slurm.sacct_command(bad)


# --- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("30", 30), ("1:30", 2), ("01:30:00", 90), ("2-00", 2880), ("1-02:03", 1563), ("0:0:1", 1)],
)
def test_time_limits_in_slurm_formats_convert_to_minutes(text, minutes):
    assert time_to_minutes(text) == minutes


@pytest.mark.parametrize(
    "flag",
    ["--exclusive", "--gres=gpu:2", "--constraint=intel&ib", "--mail-type=END,FAIL"],
)
def test_extra_sbatch_flags_that_are_allowed(flag):
    assert check_sbatch_flag(flag) is None


@pytest.mark.parametrize(
    "flag",
    [
        "-N 2",
        "--exclusive --x",
        "--gres=gpu:2\n#SBATCH --x",
        "--comment='x'",
        "exclusive",
        "--output=/tmp/x",
        "--out=/tmp/x",  # sbatch accepts abbreviations
        "--time=10",
        "--job-name=x",
    ],
)
def test_extra_sbatch_flags_that_are_refused(flag):
    assert check_sbatch_flag(flag) is not None


def test_options_refuse_unsafe_values():
    for bad in (
        {"partition": "a b"},
        {"qos": "x\n#SBATCH --y"},
        {"mem": "4 G"},
        {"time": "soon"},
        {"nodes": 0},
        {"extra": ("--output=x",)},
    ):
        with pytest.raises(ValueError):
            SlurmOptions(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SlurmDefaults(account="a;b")


def test_defaults_fill_only_what_the_step_leaves_out():
    options = SlurmOptions(partition="gpu", time=30).with_defaults(  # type: ignore[arg-type]
        SlurmDefaults(partition="batch", qos="normal", account="proj", time="01:00:00")
    )
    assert options.directives() == [
        "--time=30",
        "--partition=gpu",
        "--qos=normal",
        "--account=proj",
    ]


# --- the batch wrapper -----------------------------------------------------------------------


def wrapper(tmp_path: Path, script: str, **env: str) -> str:
    (tmp_path / "user.sh").write_text(script)
    return batch_script(
        "user.sh",
        job_name="hw-3f2a9c1e-greet",
        comment=f"hpcwaas:{EXECUTION}:greet",
        options=SlurmOptions(nodes=2, ntasks=4, cpus_per_task=2, mem="4G", extra=("--exclusive",)),
        workdir=str(tmp_path),
        stdout_path="greet.out",
        stderr_path="greet.err",
        exit_path="greet.exit",
        env=env,
    )


def test_wrapper_directives_come_first_after_the_shebang(tmp_path):
    lines = wrapper(tmp_path, "true\n").splitlines()
    assert lines[0] == "#!/bin/bash"
    directives = [line for line in lines if line.startswith("#SBATCH ")]
    assert lines[1 : 1 + len(directives)] == directives
    assert directives == [
        "#SBATCH --job-name=hw-3f2a9c1e-greet",
        f"#SBATCH --comment=hpcwaas:{EXECUTION}:greet",
        f"#SBATCH --chdir={tmp_path}",
        "#SBATCH --output=greet.out",
        "#SBATCH --error=greet.err",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks=4",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=4G",
        "#SBATCH --exclusive",
    ]


def test_wrapper_records_the_exit_code_of_the_script_and_exits_with_it(tmp_path):
    (tmp_path / "job.sbatch").write_text(wrapper(tmp_path, "echo out; echo err >&2; exit 7\n"))
    code, out, _ = bash("bash job.sbatch", tmp_path)
    assert code == 7 and out == b"out\n"
    assert (tmp_path / "greet.exit").read_text() == "7\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["greet.exit", "job.sbatch", "user.sh"]


def test_wrapper_exports_env_values_literally(tmp_path):
    text = wrapper(tmp_path, 'printf "%s" "$MSG" > msg.txt\n', MSG=HOSTILE)
    (tmp_path / "job.sbatch").write_text(text)
    code, _, _ = bash("bash job.sbatch", tmp_path)
    assert code == 0 and (tmp_path / "greet.exit").read_text() == "0\n"
    assert (tmp_path / "msg.txt").read_text() == HOSTILE
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


@pytest.mark.parametrize("field", ["workdir", "stdout_path", "comment"])
def test_wrapper_refuses_values_sbatch_would_split(tmp_path, field):
    values = {
        "job_name": "j",
        "comment": "c",
        "options": SlurmOptions(),
        "workdir": "/w",
        "stdout_path": "o",
        "stderr_path": "e",
        "exit_path": "x",
    }
    values[field] = "a b"
    with pytest.raises(ValueError):
        batch_script("s.sh", **values)  # type: ignore[arg-type]


# --- exit files and log chunks, one command for many files -----------------------------------


def test_exit_files_give_codes_of_existing_files_only(tmp_path):
    (tmp_path / "a b.exit").write_text("0\n")
    (tmp_path / "c.exit").write_text("137\n")
    paths = [str(tmp_path / "a b.exit"), str(tmp_path / "c.exit"), str(tmp_path / "none.exit")]
    code, out, err = bash(exit_file_command(paths), tmp_path)
    assert parse_exit_files(code, out, err) == {paths[0]: 0, paths[1]: 137}


def test_chunks_of_many_files_from_their_offsets_in_one_command(tmp_path):
    binary = bytes(range(256)) * 3 + "é".encode()[:1]  # ends inside a UTF-8 character
    (tmp_path / "bin.out").write_bytes(binary)
    (tmp_path / "it's; $(x).log").write_bytes(b"line 1\nline 2\n")
    (tmp_path / "empty.err").write_bytes(b"")
    files = [
        (str(tmp_path / "bin.out"), 10),
        (str(tmp_path / "it's; $(x).log"), 7),
        (str(tmp_path / "empty.err"), 0),
        (str(tmp_path / "missing.out"), 0),
    ]
    code, out, err = bash(read_chunks_command(files, 1000), tmp_path)
    chunks = parse_read_chunks(code, out, err)
    assert chunks == {
        files[0][0]: binary[10:1010],
        files[1][0]: b"line 2\n",
        files[2][0]: b"",
    }
    assert not (tmp_path / "x").exists()


def test_chunk_past_the_end_of_a_file_is_empty(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    code, out, err = bash(read_chunks_command([(str(tmp_path / "f"), 3)], 10), tmp_path)
    assert parse_read_chunks(code, out.decode(), err) == {str(tmp_path / "f"): b""}


def test_chunk_output_cut_short_is_unexpected_not_a_short_file(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 500)
    code, out, err = bash(read_chunks_command([(str(tmp_path / "f"), 0)], 1000), tmp_path)
    with pytest.raises(UnexpectedOutput):
        parse_read_chunks(code, out[: len(out) // 2], err)
    with pytest.raises(UnexpectedOutput):
        parse_exit_files(1, b"", "bash: error")


def test_remote_file_commands_refuse_paths_with_newlines():
    with pytest.raises(ValueError):
        read_chunks_command([("a\nb", 0)], 10)
    with pytest.raises(ValueError):
        exit_file_command(["a\nb"])
