"""A step's outputs: the ``name=value`` lines it wrote to the file ``$HPCWAAS_OUTPUTS``.

One output per line, the name up to the first ``=``, the value to the end of the line (a
trailing carriage return dropped); a name written twice keeps its last value. Lines that are
empty or start with ``#`` are skipped. Every declared output must be written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParsedOutputs:
    """The values of a step's declared outputs, or why they cannot be had."""

    values: dict[str, str]
    error: str | None = None  # the step fails with this reason
    warnings: list[str] = field(default_factory=list)


def parse_step_outputs(
    data: bytes | None, declared: Sequence[str], max_bytes: int
) -> ParsedOutputs:
    """The declared outputs from the file's bytes (None: the step wrote no file)."""
    if data is None:
        data = b""
    if len(data) > max_bytes:
        return ParsedOutputs(
            {}, f"wrote more than {max_bytes} bytes of outputs (limits.max_output_bytes)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ParsedOutputs({}, "wrote outputs that are not UTF-8 text")
    values: dict[str, str] = {}
    warnings: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip() or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals:
            return ParsedOutputs({}, f"outputs line {number} is not name=value")
        if name not in declared:
            warnings.append(f"output {name!r} is not declared by the step: ignored")
            continue
        values[name] = value
    missing = [name for name in declared if name not in values]
    if missing:
        names = ", ".join(missing)
        return ParsedOutputs(
            {}, f"did not write its declared outputs {names} (lines name=value to $HPCWAAS_OUTPUTS)"
        )
    return ParsedOutputs({name: values[name] for name in declared}, None, sorted(set(warnings)))
