"""The ``shell`` step kind: a command line rendered from the step's template, run by a transport."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Protocol

from hpcwaas.catalog.render import render_command, render_env
from hpcwaas.transports.base import CommandResult, LineCallback, RunningCommand, Transport


class ShellStepSpec(Protocol):
    """What this kind reads of a step's definition (``catalog.model.StepSpec``)."""

    @property
    def run(self) -> str: ...

    @property
    def env(self) -> dict[str, str]: ...

    @property
    def timeout(self) -> float | None: ...


@dataclass(frozen=True)
class ShellInvocation:
    """A rendered shell step, ready for a transport."""

    command: str
    env: dict[str, str]
    timeout: float | None


# The variable that names the file where a step writes its outputs (``name=value`` lines).
OUTPUTS_VARIABLE = "HPCWAAS_OUTPUTS"


def outputs_file(step_name: str) -> str:
    """The name of the file where a step writes its outputs, in the execution's directory."""
    return f".hpcwaas-{step_name}.outputs"


def step_context(
    execution_id: str,
    inputs: Mapping[str, Any],
    step_outputs: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The values a step template may use; ``step_outputs``: what finished steps wrote."""
    steps = {name: {"outputs": dict(values)} for name, values in (step_outputs or {}).items()}
    return {"inputs": dict(inputs), "execution": {"id": execution_id}, "steps": steps}


def step_env(
    templates: Mapping[str, str],
    context: dict[str, Any],
    *,
    execution_id: str,
    step_name: str,
    secrets: Mapping[str, str] | None = None,
    key_store_secrets: Mapping[str, str] | None = None,
    outputs_path: str | None = None,
) -> dict[str, str]:
    """A step's environment: its ``env:`` rendered (secrets in clear here only), then ours.

    ``secrets``: the secret inputs' values; ``key_store_secrets``: the workflow's ``secrets:``
    by name, read as ``{{ secrets.<name> }}``.
    """
    if secrets:
        context = {**context, "inputs": {**context["inputs"], **secrets}}
    context = {**context, "secrets": dict(key_store_secrets or {})}
    env = render_env(dict(templates), context)
    # Set last, so that a step's env cannot pass itself off as another execution or step.
    env["HPCWAAS_EXECUTION_ID"] = execution_id
    env["HPCWAAS_STEP"] = step_name
    if outputs_path is not None:
        env[OUTPUTS_VARIABLE] = outputs_path
    return env


def prepare_shell_step(
    spec: ShellStepSpec,
    *,
    execution_id: str,
    step_name: str,
    inputs: Mapping[str, Any],
    step_outputs: Mapping[str, Mapping[str, str]] | None = None,
    secrets: Mapping[str, str] | None = None,
    key_store_secrets: Mapping[str, str] | None = None,
    outputs_path: str | None = None,
) -> ShellInvocation:
    """Render the command and environment; raise RenderError if a template cannot be rendered.

    Secrets reach the environment only, never the command (which is logged and shown).
    """
    context = step_context(execution_id, inputs, step_outputs)
    command = render_command(spec.run, context)
    env = step_env(
        spec.env,
        context,
        execution_id=execution_id,
        step_name=step_name,
        secrets=secrets,
        key_store_secrets=key_store_secrets,
        outputs_path=outputs_path,
    )
    return ShellInvocation(command=command, env=env, timeout=spec.timeout)


async def start_shell_step(
    invocation: ShellInvocation,
    transport: Transport,
    *,
    cwd: PurePath | str,
    on_stdout: LineCallback,
    on_stderr: LineCallback,
    grace: float,
) -> RunningCommand:
    """Start a rendered step through ``transport``; the caller waits for (or kills) it."""
    return await transport.start(
        invocation.command,
        cwd=cwd,
        env=invocation.env,
        on_stdout=on_stdout,
        on_stderr=on_stderr,
        timeout=invocation.timeout,
        grace=grace,
    )


def failure_reason(result: CommandResult, timeout: float | None) -> str:
    """Why a step that did not succeed ended, for logs and the execution's ``error``."""
    if result.timed_out:
        return f"timed out after {timeout:g} s" if timeout is not None else "timed out"
    if result.signal is not None:
        try:
            name = signal.Signals(result.signal).name
        except ValueError:
            name = f"signal {result.signal}"
        return f"was killed by {name} (exit code {result.exit_code})"
    return f"failed with exit code {result.exit_code}"
