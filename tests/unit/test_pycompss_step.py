"""Preparing a ``pycompss`` step: the enqueue_compss command, run here against a fake one."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.kinds.base import ClusterDefaults, Preparation
from hpcwaas.catalog.kinds.pycompss import PycompssStep, prepare_pycompss_step
from hpcwaas.catalog.model import WorkflowSpec
from hpcwaas.catalog.step_checks import check_step
from hpcwaas.schedulers.pycompss import check_compss_option, parse_enqueue_compss
from hpcwaas.schedulers.slurm import SlurmDefaults, SubmitError

EXECUTION = "3f2a9c1e-7b4d-4c8e-9f00-123456789abc"
DEFAULTS = SlurmDefaults(partition="batch", qos="normal", account="proj", time="01:30:00")

# What enqueue_compss prints on success: its settings, then sbatch's line.
ENQUEUE_OK = """\
SC Configuration:          default.cfg
JobName:                   COMPSs
Queue:                     default
Reservation:               disabled
Num Nodes:                 2
Num Switches:              0
GPUs per node:             0
Job dependency:            None
Exec-Time:                 01:30:00
QoS:                       normal
Constraints:               disabled
Storage Home:              null
Storage Properties:        null
Other:                     --lang=python
\t\t\t--python_interpreter=python3
\t\t\tmain.py 10

Temp submit script is: /tmp/tmp.pBnIs2RKWr
Requesting 96 processes
Submitted batch job 3418226
"""

FAKE_ENQUEUE = """\
#!/bin/bash
{ for a in "$@"; do printf '%s\\n' "$a"; done; } > "$ARGS_FILE"
env | grep -E '^(SBATCH_|HPCWAAS_|MODE=)' | sort > "$ENV_FILE"
pwd > "$PWD_FILE"
echo "Submitted batch job 42"
"""
FAKE_MODULE = '#!/bin/bash\nprintf \'%s\\n\' "$@" > "$MODULE_FILE"\n'


def step(**fields: object) -> PycompssStep:
    return PycompssStep.model_validate({"kind": "pycompss", **fields})


def prepare(spec: PycompssStep, remote_dir: str = "/d", modules=("COMPSs/3.3",), **inputs):
    request = Preparation(
        execution_id=EXECUTION, step_name="analyse", inputs=inputs, work_dir=remote_dir
    )
    return prepare_pycompss_step(spec, request, ClusterDefaults(DEFAULTS, tuple(modules)))


def run_with_fakes(command: str, tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("enqueue_compss", FAKE_ENQUEUE), ("module", FAKE_MODULE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    files = {k: str(tmp_path / k.lower()) for k in ("ARGS_FILE", "ENV_FILE", "PWD_FILE")}
    files["MODULE_FILE"] = str(tmp_path / "module_file")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", **files}
    result = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert parse_enqueue_compss(result.returncode, result.stdout, result.stderr) == "42"
    return {k: Path(v).read_text() for k, v in files.items()}


def test_command_loads_modules_and_passes_options_app_and_arguments_as_words(tmp_path):
    work = tmp_path / "run"
    work.mkdir()
    spec = step(
        app="{{ inputs.app_dir }}/main.py",
        arguments=["--n={{ inputs.n }}", "{{ inputs.label }}"],
        num_nodes=2,
        modules=["python/3.10"],
        extra_options=["--tracing=true"],
        env={"MODE": "fast {{ inputs.label }}"},
    )
    submission = prepare(spec, str(work), app_dir="apps", n=10, label="run-1")
    seen = run_with_fakes(submission.command, tmp_path)
    assert seen["ARGS_FILE"].splitlines() == [
        "--lang=python",
        "--num_nodes=2",
        "--exec_time=90",  # the environment's time limit, in minutes
        "--qos=normal",
        "--python_interpreter=python3",
        "--tracing=true",
        "apps/main.py",
        "--n=10",
        "run-1",
    ]
    assert seen["MODULE_FILE"].splitlines() == ["load", "COMPSs/3.3", "python/3.10"]
    assert seen["PWD_FILE"].strip() == str(work)
    assert seen["ENV_FILE"].splitlines() == [
        f"HPCWAAS_EXECUTION_ID={EXECUTION}",
        "HPCWAAS_STEP=analyse",
        "MODE=fast run-1",
        "SBATCH_ACCOUNT=proj",
        f"SBATCH_ERROR={work}/.hpcwaas-analyse.err",
        "SBATCH_JOB_NAME=hw-3f2a9c1e-analyse",
        f"SBATCH_OUTPUT={work}/.hpcwaas-analyse.out",
        "SBATCH_PARTITION=batch",
    ]
    assert submission.stdout_path == f"{work}/.hpcwaas-analyse.out"
    assert submission.stderr_path == f"{work}/.hpcwaas-analyse.err"
    assert submission.files == {} and submission.exit_path is None
    assert submission.job_name == "hw-3f2a9c1e-analyse"


def test_step_keys_win_over_environment_defaults():
    spec = step(app="main.py", qos="debug", exec_time=5, extra_options=["--queue=gpu"])
    words = shlex.split(prepare(spec).command.split(" && ")[-1])
    assert "--qos=debug" in words and "--exec_time=5" in words and "--queue=gpu" in words
    assert "SBATCH_PARTITION=batch" not in words


@pytest.mark.parametrize(
    "value",
    [
        "$(touch /tmp/pwned-hpcwaas)",
        "two words",
        "it's",
        'say "hi"',
        "a;b",
        "line\nbreak",
        "",
        "*",
        "é",
    ],
)
def test_argument_that_enqueue_compss_would_pass_through_a_shell_is_refused(value):
    spec = step(app="main.py", arguments=["{{ inputs.v }}"])
    with pytest.raises(RenderError) as info:
        prepare(spec, v=value)
    assert "argument 1" in str(info.value)


def test_raw_value_with_shell_syntax_is_refused_too():
    spec = step(app="main.py", arguments=["{{ inputs.v | raw }}"])
    with pytest.raises(RenderError):
        prepare(spec, v="$(id)")


def test_app_that_would_read_as_an_option_is_refused():
    with pytest.raises(RenderError):
        prepare(step(app="{{ inputs.a }}"), a="--version")


def test_remote_dir_and_env_values_are_quoted_once_without_restriction(tmp_path):
    work = tmp_path / "it's a dir"
    work.mkdir()
    spec = step(app="main.py", env={"MODE": "{{ inputs.m }}"})
    seen = run_with_fakes(prepare(spec, str(work), m="$(touch pwned) x").command, tmp_path)
    assert "MODE=$(touch pwned) x" in seen["ENV_FILE"].splitlines()
    assert seen["PWD_FILE"].strip() == str(work)
    assert not (tmp_path / "pwned").exists() and not (work / "pwned").exists()


def test_no_modules_means_no_module_load():
    assert "module" not in prepare(step(app="main.py"), modules=()).command


def test_environment_modules_come_first_and_are_not_repeated():
    spec = step(app="main.py", modules=["COMPSs/3.3", "extra/1"])
    assert "module load COMPSs/3.3 extra/1 &&" in prepare(spec).command


@pytest.mark.parametrize(
    ("option", "allowed"),
    [
        ("--tracing=true", True),
        ("--log_level=debug", True),
        ("--project_name=bsc19", True),
        ("--num_nodes=3", False),
        ("--job_name=x", False),
        ("--lang=java", False),
        ("--opts=$(id)", False),
        ("--x=a b", False),
        ("-d", False),
    ],
)
def test_extra_options(option, allowed):
    assert (check_compss_option(option) is None) == allowed


def test_enqueue_compss_output_gives_the_job_id():
    assert parse_enqueue_compss(0, ENQUEUE_OK, "") == "3418226"


def test_enqueue_compss_refusal_quotes_the_reason():
    stdout = "SC Configuration:          default.cfg\nInvalid number of nodes\n \nUsage: ...\n"
    with pytest.raises(SubmitError) as info:
        parse_enqueue_compss(1, stdout, "")
    assert "Invalid number of nodes" in info.value.message and not info.value.retryable


def test_enqueue_compss_sbatch_outage_is_retryable():
    stderr = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n"
    with pytest.raises(SubmitError) as info:
        parse_enqueue_compss(1, "Temp submit script is: /tmp/x\n", stderr)
    assert info.value.retryable and "Socket timed out" in info.value.message


def test_num_nodes_template_must_render_to_a_positive_integer():
    spec = step(app="main.py", num_nodes="{{ inputs.n }}")
    assert "--num_nodes=3" in prepare(spec, n=3).command
    with pytest.raises(RenderError, match="num_nodes must be a positive integer, got 'many'"):
        prepare(spec, n="many")


def test_empty_option_templates_leave_the_options_out():
    spec = step(app="main.py", num_nodes="{{ inputs.n }}", extra_options=["{{ inputs.x }}"])
    command = prepare(spec, n=None, x="").command
    assert "--num_nodes" not in command
    assert "--qos=normal" in command  # the environment's default, as without a template


def test_extra_option_template_rendering_a_reserved_option_is_refused():
    spec = step(app="main.py", extra_options=["{{ inputs.x }}"])
    with pytest.raises(RenderError, match="--qos=high"):
        prepare(spec, x="--qos=high")


def test_literal_num_nodes_that_is_no_number_is_a_load_problem():
    spec = step(app="main.py", num_nodes="many")
    workflow = WorkflowSpec.model_validate({"steps": {"s": spec.model_dump()}})
    [problem] = check_step(("s",), "s", spec, workflow)
    assert "num_nodes" in problem.message


def test_value_inside_an_extra_option_stays_one_word_and_is_refused_if_not_plain():
    spec = step(app="main.py", extra_options=["--project_name={{ inputs.p }}"])
    assert "--project_name=bsc19" in prepare(spec, p="bsc19").command
    with pytest.raises(RenderError, match="'--project_name=x --queue=other' is not an"):
        prepare(spec, p="x --queue=other")


def test_raw_value_in_extra_options_gives_several_options_each_checked():
    spec = step(app="main.py", extra_options=["{{ inputs.x | raw }}"])
    command = prepare(spec, x="--tracing=true --log_level=debug").command
    assert "--tracing=true --log_level=debug main.py" in command
    with pytest.raises(RenderError, match="--x=\\$\\(id\\)"):
        prepare(spec, x="--x=$(id)")


def test_exec_time_and_container_options_may_come_from_inputs():
    spec = step(
        app="main.py",
        exec_time="{{ inputs.minutes }}",
        container_image="{{ inputs.image }}",
    )
    command = prepare(spec, minutes=15, image="/images/w.sif").command
    assert "--exec_time=15" in command and "--container_image=/images/w.sif" in command
    with pytest.raises(RenderError, match="exec_time must be a positive integer"):
        prepare(spec, minutes="soon", image="/i.sif")
    with pytest.raises(RenderError, match="container image"):
        prepare(spec, minutes=15, image="/a b.sif")
