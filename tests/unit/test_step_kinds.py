"""The registry of step kinds: the format and its schema follow it, and a new kind needs no
other module to be validated and shown by a dry run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import typing

from hpcwaas.catalog.kinds import KINDS, kind_of
from hpcwaas.catalog.model import ApplicationSpec
from hpcwaas.catalog.schema import workflow_schema


def test_the_schema_lists_the_registered_kinds_in_their_order() -> None:
    steps = workflow_schema()["$defs"]["WorkflowSpec"]["properties"]["steps"]
    union = steps["additionalProperties"]
    refs = [f"#/$defs/{kind.settings.__name__}" for kind in KINDS.values()]
    assert [option["$ref"] for option in union["oneOf"]] == refs
    assert union["discriminator"]["mapping"] == dict(zip(KINDS, refs, strict=True))
    on_failure = workflow_schema()["$defs"]["WorkflowSpec"]["properties"]["on_failure"]
    assert on_failure["additionalProperties"] == union


def test_each_kind_names_itself_in_its_settings() -> None:
    for name, kind in KINDS.items():
        assert kind.name == name
        literal = kind.settings.model_fields["kind"].annotation
        assert typing.get_args(literal) == (name,)
        schema = workflow_schema()["$defs"][kind.settings.__name__]
        assert schema["properties"]["kind"]["const"] == name


def test_a_loaded_step_finds_its_kind() -> None:
    app = ApplicationSpec.model_validate(
        {
            "application": "a",
            "environments": ["local"],
            "workflows": {
                "w": {
                    "steps": {
                        name: {"kind": name, **_required(name)} for name in ("shell", "stage_out")
                    }
                }
            },
        }
    )
    assert [kind_of(step).name for step in app.workflows["w"].steps.values()] == [
        "shell",
        "stage_out",
    ]


def _required(kind: str) -> dict[str, str]:
    return {"shell": {"run": "true"}, "stage_out": {"source_path": "out"}}[kind]


# A kind written as a plugin would be: one module, then one registration. It runs in a
# process of its own, so that the kinds of the other tests stay as shipped.
TOY = textwrap.dedent(
    """
    import json
    import sys
    from pathlib import Path
    from typing import Literal

    from hpcwaas.catalog.kinds import register
    from hpcwaas.catalog.kinds.base import (
        CommandInvocation, PlannedStep, Preparation, StepKind, StepSettings,
    )
    from hpcwaas.catalog.render import render_command


    class GreetStep(StepSettings):
        \"\"\"Say hello to someone.\"\"\"

        kind: Literal["greet"]
        who: str
        \"\"\"Whom to greet (a template).\"\"\"


    class GreetKind(StepKind[GreetStep, CommandInvocation]):
        name = "greet"
        settings = GreetStep

        def check(self, step, checks):
            return checks.templates([(("who",), step.who)])

        def prepare(self, step, request):
            context = {"inputs": dict(request.inputs)}
            command = "echo hello " + render_command(step.who, context)
            return CommandInvocation(command=command, env={}, timeout=step.timeout)

        def plan(self, step, request):
            return PlannedStep(command=self.prepare(step, request).command)

        def run(self, runtime, name, step, *, resumed):
            return runtime.command(self, name, step)


    register(GreetKind())

    from hpcwaas.catalog import CatalogFileError
    from hpcwaas.catalog.catalog import DeployedWorkflow
    from hpcwaas.catalog.loader import read_application
    from hpcwaas.catalog.schema import workflow_schema
    from hpcwaas.engine.plan import build_plan
    from hpcwaas.settings import LocalEnvironment

    folder = Path(sys.argv[1])
    result = {"schema": workflow_schema()["$defs"].get("GreetStep")}
    good = folder / "good.yaml"
    good.write_text(
        "application: a\\nenvironments: [local]\\nexpose: [w]\\nworkflows:\\n"
        "  w:\\n    inputs: {name: {type: string}}\\n"
        "    steps:\\n      hi: {kind: greet, who: '{{ inputs.name }}'}\\n"
    )
    loaded = read_application(good)
    spec = loaded.application.workflows["w"]
    workflow = DeployedWorkflow(
        id="a@local@w", application=loaded.application, environment="local",
        environment_name="Local", name="w", spec=spec, digest=loaded.digest, source=good,
    )
    plan = build_plan(
        workflow, {"name": "Ada Lovelace"}, LocalEnvironment(kind="local"),
        local_work_root=folder,
    )
    result["plan"] = [step.model_dump() for step in plan.steps]
    problems = {}
    for case, step in {
        "unknown_key": "{kind: greet, who: x, whom: y}",
        "template": "{kind: greet, who: '{{ inputs.nobody }}'}",
        "unknown_kind": "{kind: wave, who: x}",
    }.items():
        path = folder / f"{case}.yaml"
        path.write_text(
            "application: a\\nenvironments: [local]\\nexpose: [w]\\nworkflows:\\n"
            f"  w:\\n    steps:\\n      hi: {step}\\n"
        )
        try:
            read_application(path)
        except CatalogFileError as exc:
            problems[case] = exc.problems
    result["problems"] = problems
    print(json.dumps(result))
    """
)


def test_a_kind_registered_outside_the_package_is_validated_and_planned(tmp_path) -> None:
    module = tmp_path / "toy_kind.py"
    module.write_text(TOY, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(module), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)

    schema = result["schema"]
    assert schema["properties"]["kind"] == {"const": "greet", "title": "Kind", "type": "string"}
    assert schema["properties"]["who"]["description"] == "Whom to greet (a template)."
    assert schema["required"] == ["kind", "who"]

    [hi] = result["plan"]
    assert hi["kind"] == "greet"
    assert hi["command"] == "echo hello 'Ada Lovelace'"
    assert hi["error"] is None

    problems = result["problems"]
    [unknown_key] = problems["unknown_key"]
    assert "unknown key 'whom'" in unknown_key
    assert "allowed keys here: kind, who, needs" in unknown_key
    [template] = problems["template"]
    assert "step 'hi' who:" in template and "nobody" in template
    [unknown_kind] = problems["unknown_kind"]
    assert 'unknown step kind string "wave"' in unknown_kind
    assert "stage_in, stage_out, dag_run, image_build, image_transfer, greet" in unknown_kind
