"""The plan of a dry run: steps in order, rendered as a run renders them; secrets hidden."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpcwaas.catalog.catalog import DeployedWorkflow
from hpcwaas.catalog.model import ApplicationSpec, InputSpec
from hpcwaas.cli.workflows import describe_plan
from hpcwaas.engine.plan import PLAN_EXECUTION_ID, build_plan, plan_inputs
from hpcwaas.settings import LocalEnvironment, SlurmEnvironment

SLURM = SlurmEnvironment(
    kind="slurm",
    host="login.example.org",
    host_keys=["login.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"],
    defaults={"partition": "batch", "time": "00:10:00"},  # type: ignore[arg-type]
    pycompss_modules=["COMPSs/3.3"],
)


def _workflow(steps: dict[str, Any], inputs: dict[str, Any] | None = None) -> DeployedWorkflow:
    app = ApplicationSpec.model_validate(
        {
            "application": "demo",
            "environments": ["hpc"],
            "expose": ["wf"],
            "workflows": {"wf": {"steps": steps, "inputs": inputs or {}}},
        }
    )
    return DeployedWorkflow(
        id="demo@hpc@wf",
        application=app,
        environment="hpc",
        environment_name="HPC",
        name="wf",
        spec=app.workflows["wf"],
        digest="d" * 64,
        source=Path("demo.yaml"),
    )


def test_steps_come_in_run_order_with_their_needs_and_quoted_commands(tmp_path: Path) -> None:
    workflow = _workflow(
        {
            "report": {"kind": "shell", "needs": ["left", "right"], "run": "cat l r"},
            "left": {"kind": "shell", "run": "echo {{ inputs.who }} > l"},
            "right": {"kind": "shell", "run": "echo right > r"},
        },
        {"who": {"type": "string"}},
    )
    plan = build_plan(
        workflow, {"who": "Ada; rm -rf ~"}, LocalEnvironment(kind="local"), local_work_root=tmp_path
    )
    assert [s.name for s in plan.steps] == ["left", "right", "report"]
    assert plan.steps[2].needs == ["left", "right"]
    assert plan.steps[0].command == "echo 'Ada; rm -rf ~' > l"
    assert plan.work_dir == str(tmp_path / PLAN_EXECUTION_ID)
    assert not (tmp_path / PLAN_EXECUTION_ID).exists()


def test_a_slurm_step_shows_its_script_batch_script_and_submit_command() -> None:
    workflow = _workflow(
        {
            "compute": {
                "kind": "slurm",
                "script": "srun ./model --steps {{ inputs.n }}",
                "options": {"nodes": 2},
            }
        },
        {"n": {"type": "integer", "default": 10}},
    )
    plan = build_plan(
        workflow, {"n": 10}, SLURM, local_work_root=Path("/unused"), cluster_login="alice"
    )
    step = plan.steps[0]
    assert plan.work_dir == f".hpcwaas/executions/{PLAN_EXECUTION_ID}"
    assert plan.cluster_login == "alice"
    assert step.script == "srun ./model --steps 10"
    assert step.batch_script is not None
    assert "#SBATCH --nodes=2" in step.batch_script
    assert "#SBATCH --partition=batch" in step.batch_script
    assert step.command is not None and "sbatch" in step.command
    assert step.error is None


def test_a_pycompss_step_shows_its_enqueue_compss_command() -> None:
    workflow = _workflow(
        {"app": {"kind": "pycompss", "app": "main.py", "arguments": ["{{ inputs.size }}"]}},
        {"size": {"type": "integer"}},
    )
    plan = build_plan(workflow, {"size": 64}, SLURM, local_work_root=Path("/unused"))
    command = plan.steps[0].command
    assert command is not None
    assert "module load COMPSs/3.3" in command
    assert "enqueue_compss" in command
    assert "main.py 64" in command


def test_a_step_that_cannot_be_rendered_carries_the_reason() -> None:
    workflow = _workflow(
        {"app": {"kind": "pycompss", "app": "main.py", "arguments": ["{{ inputs.word }}"]}},
        {"word": {"type": "string"}},
    )
    plan = build_plan(workflow, {"word": "two words"}, SLURM, local_work_root=Path("/unused"))
    assert plan.steps[0].command is None
    assert plan.steps[0].error is not None
    assert "cannot be rendered" in plan.steps[0].error


def test_secret_inputs_show_as_a_placeholder_in_inputs_and_commands() -> None:
    workflow = _workflow({"use": {"kind": "shell", "run": "login --password {{ inputs.pw }}"}})
    # The `secret` type is declared by the format; built here without its model checks.
    workflow.spec.inputs["pw"] = InputSpec.model_construct(type="secret", required=True)  # type: ignore[arg-type]
    assert plan_inputs(workflow.spec, {"pw": "hunter2"}) == {"pw": "[secret]"}
    plan = build_plan(
        workflow, {"pw": "hunter2"}, LocalEnvironment(kind="local"), local_work_root=Path("/x")
    )
    assert "hunter2" not in plan.model_dump_json()
    assert plan.steps[0].command == "login --password '[secret]'"


def test_a_step_on_another_environment_is_planned_with_that_environments_defaults() -> None:
    gpu = SLURM.model_copy(
        update={"defaults": SLURM.defaults.model_copy(update={"partition": "gpu"})}
    )
    workflow = _workflow(
        {
            "prepare": {"kind": "slurm", "script": "srun ./prepare"},
            "train": {
                "kind": "slurm",
                "script": "srun ./train",
                "needs": ["prepare"],
                "environment": "gpu-b",
            },
            "report": {"kind": "slurm", "script": "srun ./report", "needs": ["prepare"]},
        }
    )
    plan = build_plan(workflow, {}, SLURM, local_work_root=Path("/unused"), others={"gpu-b": gpu})
    steps = {s.name: s for s in plan.steps}
    assert steps["prepare"].environment_id is None
    assert steps["train"].environment_id == "gpu-b"
    assert "#SBATCH --partition=gpu" in (steps["train"].batch_script or "")
    assert "#SBATCH --partition=batch" in (steps["report"].batch_script or "")
    # Slurm chains jobs of one cluster only: the step on gpu-b waits for its need's end
    assert not steps["train"].submitted_ahead
    assert steps["report"].submitted_ahead
    assert "Step 2: train (slurm, on gpu-b, after prepare)" in describe_plan(plan)


def test_a_cluster_step_sent_from_a_local_environment_is_planned_on_its_cluster(
    tmp_path: Path,
) -> None:
    workflow = _workflow({"solve": {"kind": "slurm", "script": "true", "environment": "hpc-b"}})
    plan = build_plan(
        workflow,
        {},
        LocalEnvironment(kind="local"),
        local_work_root=tmp_path,
        others={"hpc-b": SLURM},
    )
    (step,) = plan.steps
    assert step.error is None
    assert step.environment_id == "hpc-b"
    assert step.command is not None and "sbatch" in step.command
