"""The ``shell`` step kind: a command line rendered from the step's template, run by a transport."""

from __future__ import annotations

from typing import Literal

from hpcwaas.catalog.kinds.base import (
    CommandInvocation,
    PlannedStep,
    Preparation,
    R,
    StepChecks,
    StepKind,
    StepRuntime,
    StepSettings,
    step_env,
)
from hpcwaas.catalog.problem import Problem
from hpcwaas.catalog.render import render_command


class ShellStep(StepSettings):
    """A shell command rendered from a template, run in the execution's directory."""

    kind: Literal["shell"]
    run: str
    """The command line (a template; values are shell-quoted)."""


class ShellKind(StepKind[ShellStep, CommandInvocation]):
    """Steps that are shell commands, run on the place's host (this one, or a login node)."""

    name = "shell"
    settings = ShellStep

    def check(self, step: ShellStep, checks: StepChecks) -> list[Problem]:
        """The command is read by a shell: values must stand where quoting holds."""
        return checks.templates([(("run",), step.run)], in_shell=True)

    def prepare(self, step: ShellStep, request: Preparation) -> CommandInvocation:
        """The command line and its environment; RenderError if a template cannot be rendered.

        Secrets reach the environment only, never the command (which is logged and shown).
        """
        context = request.template_context()
        command = render_command(step.run, context)
        env = step_env(step.env, context, request)
        return CommandInvocation(command=command, env=env, timeout=step.timeout)

    def plan(self, step: ShellStep, request: Preparation) -> PlannedStep:
        """The command line and its environment."""
        invocation = self.prepare(step, request)
        return PlannedStep(command=invocation.command, env=invocation.env)

    def run(self, runtime: StepRuntime[R], name: str, step: ShellStep, *, resumed: bool) -> R:
        """A command on the place's transport; after a restart it starts over."""
        return runtime.command(self, name, step)
