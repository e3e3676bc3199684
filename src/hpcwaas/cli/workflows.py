"""`waas workflows`: list, show, trigger (with -f / -l to follow)."""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Any

from hpcwaas.cli.parsing import (
    UsageError,
    WaasParser,
    add_command,
    add_subcommands,
    input_pairs,
)

if TYPE_CHECKING:
    from hpcwaas.api.models import DryRunPlan, InputSpecPublic, WorkflowDetail
    from hpcwaas.cli.context import Context

LIST_HEADERS = ("Workflow ID", "Workflow Name", "Application", "Environment ID", "Environment Name")
# The fields of hpcwaas.api.models.WorkflowPublic, in its order: the list keeps exactly these
# (a field a newer server adds is left out, as the model's dump left it out).
WORKFLOW_FIELDS = ("id", "name", "application_id", "environment_id", "environment_name")
OPTIONAL_WORKFLOW_FIELDS = ("description",)


def fill(group: WaasParser) -> None:
    """Add the subcommands of `workflows`; alone, it lists them (the original's alias)."""
    group.set_defaults(func=run_list)
    sub = add_subcommands(group)
    add_command(sub, "list", ("ls", "l"), "List the workflows you may trigger", run_list)

    show = add_command(
        sub, "show", (), "Show a workflow's inputs (types, defaults, descriptions)", run_show
    )
    show.add_argument("workflow_id", metavar="workflow-id")

    add_command(
        sub,
        "trigger",
        ("run", "r", "t"),
        "Trigger a workflow",
        run_trigger,
        description=(
            "Trigger a workflow, given its ID <application>@<environment>@<workflow>.\n\n"
            "Each -i gives one or more comma-separated inputs, key=value: -i n=2,mode=fast\n"
            "is two inputs. A piece without '=' stays in the value before it (-i tags=x,y\n"
            "is one input); a pair in double quotes is one input: -i '\"expr=a=1,b=2\"'.\n"
            "Example: waas workflows trigger -f -i name=world -i n=3 demo@local@hello\n\n"
            "--dry-run checks the inputs and prints the steps as they would run "
            "(commands, batch scripts), without running anything."
        ),
        fill=_trigger_arguments,
    )


def _trigger_arguments(trigger: WaasParser) -> None:
    # On first use: the follow options come from `executions`, which `list` does not need.
    from hpcwaas.cli import executions

    trigger.add_argument("workflow_id", metavar="workflow-id")
    trigger.add_argument(
        "-i",
        "--inputs",
        type=input_pairs,
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="inputs of the workflow, comma-separated (repeatable)",
    )
    trigger.add_argument(
        "--dry-run",
        action="store_true",
        help="check the inputs and print the plan (steps, commands, batch scripts); run nothing",
    )
    executions.add_follow_args(trigger)


def run_list(ctx: Context) -> int:
    """`workflows list`: a table (IDs never cut) or the JSON array."""
    from hpcwaas.client import calls

    workflows = ctx.client().send_json(calls.list_workflows(), read_workflows)
    if ctx.out.json:
        # Without additive fields the array is exactly the original's.
        ctx.out.document(workflows)
        return 0
    if not workflows:
        ctx.out.line("No workflows found.")
        return 0
    ctx.out.table(LIST_HEADERS, [[w[field] for field in WORKFLOW_FIELDS] for w in workflows])
    return 0


def read_workflows(body: Any) -> list[dict[str, str]]:
    """The workflows of a `GET /workflows` body, each with the fields of the model only.

    Read here rather than through the API model, whose import (pydantic) would be about a
    third of the command's start-up. Raises ValueError, saying what is wrong, for a body that is
    not a list of workflows (the SDK makes that an UnexpectedResponse).
    """
    items = body.get("workflows") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ValueError("`workflows` should be a list")
    workflows = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"workflows[{index}] should be an object")
        workflow = {}
        for name in (*WORKFLOW_FIELDS, *OPTIONAL_WORKFLOW_FIELDS):
            value = item.get(name)
            if value is None and name in OPTIONAL_WORKFLOW_FIELDS:
                continue
            if not isinstance(value, str):
                raise ValueError(f"workflows[{index}].{name} should be a string")
            workflow[name] = value
        workflows.append(workflow)
    return workflows


def run_show(ctx: Context) -> int:
    """`workflows show <id>`: the workflow and its declared inputs."""
    workflow = ctx.client().get_workflow(ctx.args.workflow_id)
    if ctx.out.json:
        ctx.out.document(workflow.model_dump(mode="json"))
        return 0
    for line in describe_workflow(workflow):
        ctx.out.line(line)
    return 0


def describe_workflow(workflow: WorkflowDetail) -> list[str]:
    """Readable lines for one workflow and its inputs."""
    lines = [
        f"Workflow ID:  {workflow.id}",
        f"Name:         {workflow.name}",
        f"Application:  {workflow.application_id}",
        f"Environment:  {workflow.environment_id} ({workflow.environment_name})",
    ]
    if workflow.description:
        lines.append(f"Description:  {workflow.description}")
    lines.append("Inputs:" if workflow.inputs else "Inputs:       none")
    lines.extend(f"  {describe_input(spec)}" for spec in workflow.inputs)
    if workflow.steps:
        lines.append(f"Steps:        {', '.join(workflow.steps)}")
    if workflow.outputs:
        lines.append(f"Outputs:      {', '.join(workflow.outputs)}")
    return lines


def describe_input(spec: InputSpecPublic) -> str:
    """`name (type, required | default: x; constraints): description`."""
    kind = f"list of {spec.items}" if spec.type == "list" and spec.items else spec.type
    facts = ["required" if spec.required else f"default: {json.dumps(spec.default)}"]
    if spec.values:
        facts.append("one of " + ", ".join(json.dumps(v) for v in spec.values))
    if spec.minimum is not None:
        facts.append(f"min {spec.minimum:g}")
    if spec.maximum is not None:
        facts.append(f"max {spec.maximum:g}")
    if spec.min_length is not None:
        facts.append(f"min length {spec.min_length}")
    if spec.max_length is not None:
        facts.append(f"max length {spec.max_length}")
    if spec.pattern:
        facts.append(f"pattern {spec.pattern}")
    text = f"{spec.name} ({kind}; {', '.join(facts)})"
    return f"{text}: {spec.description}" if spec.description else text


def run_trigger(ctx: Context) -> int:
    """`workflows trigger <id> [-i k=v]... [-f] [-l]`."""
    from hpcwaas.cli import executions

    args = ctx.args
    inputs = dict(args.inputs)
    client = ctx.client()
    if args.dry_run:
        if args.follow or args.logs:
            raise UsageError("--dry-run runs nothing, so there is nothing to follow (-f, -l)")
        plan = client.dry_run(args.workflow_id, inputs)
        if ctx.out.json:
            ctx.out.document(plan.model_dump(mode="json"))
        else:
            for line in describe_plan(plan):
                ctx.out.line(line)
        # a step that cannot be rendered would fail the run: scripts can tell
        return 1 if any(step.error for step in plan.steps) else 0
    execution_id = client.trigger(args.workflow_id, inputs)
    if ctx.out.json:
        # The original's output: the ID as a JSON string.
        ctx.out.document(execution_id)
    else:
        ctx.out.line(f"Workflow triggered with execution ID: {execution_id}")
    if args.logs:
        levels = executions.DEFAULT_LEVELS
        executions.stream_logs(ctx, execution_id, 0, levels, follow=True)
        final = executions.retrying(ctx, partial(client.get_execution, execution_id))
        executions.print_status(ctx, final)
        return executions.exit_code(final)
    if args.follow:
        return executions.follow_status(ctx, execution_id)
    return 0


def describe_plan(plan: DryRunPlan) -> list[str]:
    """Readable lines for a dry run's plan: inputs, then each step as it would run."""
    lines = [
        f"Dry run of {plan.workflow_id}: nothing was run or recorded.",
        f"Working directory: {plan.work_dir}"
        + (f" (cluster account {plan.cluster_login})" if plan.cluster_login else ""),
        "Inputs:" if plan.inputs else "Inputs: none",
    ]
    lines.extend(f"  {name} = {json.dumps(value)}" for name, value in plan.inputs.items())
    for number, step in enumerate(plan.steps, 1):
        needs = f", after {', '.join(step.needs)}" if step.needs else ""
        on = f", on {step.environment_id}" if step.environment_id else ""
        lines.append(f"Step {number}: {step.name} ({step.kind}{on}{needs})")
        if step.error:
            lines.append(f"  error: {step.error}")
        if step.submitted_ahead:
            lines.append(
                f"  submitted ahead: at once, to start when {', '.join(step.needs)} succeeded "
                "(--dependency=afterok)"
            )
        if step.command is not None:
            lines.extend(_block("command", step.command))
        if step.script is not None:
            lines.extend(_block("script", step.script))
        if step.batch_script is not None:
            lines.extend(_block("batch script", step.batch_script))
    if plan.outputs:
        lines.append(f"Outputs: {', '.join(plan.outputs)}")
    return lines


def _block(label: str, text: str) -> list[str]:
    body = text.rstrip("\n").splitlines() or [""]
    if len(body) == 1:
        return [f"  {label}: {body[0]}"]
    return [f"  {label}:", *(f"    {line}" for line in body)]
