"""Which Slurm steps are submitted ahead, and which steps' ends the engine must see at once.

Pure: read off the workflow's steps. A ``slurm`` step is submitted ahead, as soon as the jobs
of its needs are submitted, with a Slurm dependency on them (``afterok``), when its rendered
job is known by then: its templates read no value an earlier step writes (``steps.*``), every
need is itself a ``slurm`` step on the same environment (so has a job on the same cluster to
depend on), and it has no ``timeout`` (which
counts from the submission, so would count the wait on its needs too). Slurm then starts it
the moment its needs succeed, with no poll of the engine in between.

The engine must see the end of a step at once when something waits on it: a step with a
dependent that is not submitted ahead (that one is submitted only once this one succeeded),
and a final step (its end ends the execution). Those are watched closely (jobs.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpcwaas.catalog.kinds.slurm import SlurmStep
from hpcwaas.catalog.render import uses_step_outputs

if TYPE_CHECKING:
    from hpcwaas.catalog.model import StepSpec


def submitted_ahead(steps: Mapping[str, StepSpec]) -> frozenset[str]:
    """The steps submitted ahead: ``slurm`` steps with needs, all ``slurm`` steps on the same
    environment, no output of an earlier step in their templates, no ``timeout``."""
    return frozenset(
        name
        for name, spec in steps.items()
        if isinstance(spec, SlurmStep)
        and spec.needs
        and spec.timeout is None
        and all(_same_cluster(spec, steps.get(need)) for need in spec.needs)
        and not any(uses_step_outputs(t) for t in (spec.script, *spec.env.values()))
    )


def _same_cluster(step: SlurmStep, need: StepSpec | None) -> bool:
    """Whether ``need`` is a ``slurm`` step on the environment of ``step``."""
    return isinstance(need, SlurmStep) and need.environment == step.environment


def ends_awaited(steps: Mapping[str, StepSpec], ahead: frozenset[str]) -> frozenset[str]:
    """The steps whose end the engine must see at once: final steps, and the needs of steps
    not submitted ahead."""
    dependents: dict[str, list[str]] = {name: [] for name in steps}
    for name, spec in steps.items():
        for need in spec.needs:
            dependents.setdefault(need, []).append(name)
    return frozenset(
        name
        for name in steps
        if not dependents[name] or any(d not in ahead for d in dependents[name])
    )


@dataclass(frozen=True)
class AheadPlan:
    """How the steps of one workflow are submitted: ahead or not, and whose end is awaited."""

    needs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ahead: frozenset[str] = frozenset()
    awaited: frozenset[str] = frozenset()
    retried: frozenset[str] = frozenset()  # steps that may be attempted again

    @classmethod
    def of(
        cls, steps: Mapping[str, StepSpec], *, on_cluster: Callable[[str | None], bool]
    ) -> AheadPlan:
        """The plan of ``steps``; nothing goes ahead off a cluster (``on_cluster``: whether
        the environment a step names, None for none, is one)."""
        ahead = frozenset(
            name for name in submitted_ahead(steps) if on_cluster(steps[name].environment)
        )
        return cls(
            needs={name: tuple(spec.needs) for name, spec in steps.items()},
            ahead=ahead,
            awaited=ends_awaited(steps, ahead),
            retried=frozenset(name for name, spec in steps.items() if spec.retries > 0),
        )

    def dependents(self, name: str) -> list[str]:
        """The steps submitted ahead that need step ``name``."""
        return [d for d in self.ahead if name in self.needs.get(d, ())]
