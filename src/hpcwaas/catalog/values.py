"""Checking one value against one declared input: type, coercion from strings, constraints.

Values come as JSON values or, from the original CLI, always as strings; ``strict`` (used for
defaults written in a workflow file, which YAML already types) turns the string coercions off.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpcwaas.catalog.model import InputSpec

_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
_MAX_DIGITS = 100
# Half of a UTF-16 pair: JSON can carry one alone ("\ud800"), but it is no character, and
# neither a process nor UTF-8 can take it.
_SURROGATE = re.compile("[\ud800-\udfff]")


class ValueProblem(Exception):
    """One reason a value does not fit (without the input's name)."""


def describe(value: Any) -> str:
    """A short, safe description of a value for an error message: its JSON type and a prefix."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    kind = {str: "string", int: "integer", float: "number", list: "list", dict: "object"}
    name = next((n for t, n in kind.items() if isinstance(value, t)), type(value).__name__)
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    # The description goes into a UTF-8 response: a lone surrogate is shown escaped.
    return f"{name} {text}".encode("utf-8", "backslashreplace").decode("utf-8")


def check_value(spec: InputSpec, value: Any, *, strict: bool = False) -> Any:
    """Return ``value`` typed for ``spec``, or raise ValueProblem saying why it does not fit."""
    if spec.type == "list":
        return _check_list(spec, value, strict)
    if spec.type == "enum":
        return _check_enum(spec, value, strict)
    return _check_scalar(spec, spec.type, value, strict)


def _check_scalar(spec: InputSpec, kind: str, value: Any, strict: bool) -> Any:
    if kind == "secret" and not isinstance(value, str):
        raise ValueProblem(f"expected a string, got {_kind(value)}")
    if kind in ("string", "secret", "ssh_key"):
        typed: Any = _as_string(value)
        if kind == "ssh_key" and not typed.strip():
            raise ValueProblem("expected an SSH key ID, got an empty string")
        _check_string(spec, typed)
        return typed
    if kind == "path":
        typed = _as_path(value)
        _check_string(spec, typed)
        return typed
    if kind == "integer":
        typed = _as_integer(value, strict)
    elif kind == "number":
        typed = _as_number(value, strict)
    else:
        return _as_boolean(value, strict)
    if spec.minimum is not None and typed < spec.minimum:
        raise ValueProblem(f"{typed} is below the minimum {spec.minimum}")
    if spec.maximum is not None and typed > spec.maximum:
        raise ValueProblem(f"{typed} is above the maximum {spec.maximum}")
    return typed


def check_text(value: str) -> str:
    """``value`` if every character of it can reach a step; else ValueProblem saying why."""
    if "\x00" in value:
        raise ValueProblem("a NUL character is not allowed in a string")
    surrogate = _SURROGATE.search(value)
    if surrogate is not None:
        raise ValueProblem(
            f"the string holds a lone UTF-16 surrogate (U+{ord(surrogate.group()):04X}), "
            "which is not a character: send valid Unicode text (in JSON, a \\u escape of a "
            "surrogate needs its pair)"
        )
    return value


def _as_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueProblem(f"expected a string, got {describe(value)}")
    return check_text(value)


def _as_path(value: Any) -> str:
    text = _as_string(value)
    if not text:
        raise ValueProblem("expected a path, got an empty string")
    if "\n" in text or "\r" in text:
        raise ValueProblem("a path cannot hold a line break; give the path on one line")
    return text


def _check_string(spec: InputSpec, value: str) -> None:
    if spec.min_length is not None and len(value) < spec.min_length:
        raise ValueProblem(f"too short: {len(value)} characters, at least {spec.min_length}")
    if spec.max_length is not None and len(value) > spec.max_length:
        raise ValueProblem(f"too long: {len(value)} characters, at most {spec.max_length}")
    if spec.pattern is not None and re.fullmatch(spec.pattern, value) is None:
        shown = "the value" if spec.type == "secret" else describe(value)  # never echo a secret
        raise ValueProblem(f"{shown} does not match the pattern {spec.pattern}")


def _kind(value: Any) -> str:
    # The type alone: the value may be a secret given with the wrong type.
    return describe(value).split(" ", 1)[0]


def _as_integer(value: Any, strict: bool) -> int:
    if isinstance(value, bool):
        raise ValueProblem(f"expected an integer, got {describe(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and not strict and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and not strict:
        text = value.strip()
        if _INTEGER.fullmatch(text) and len(text) <= _MAX_DIGITS:
            return int(text)
    raise ValueProblem(f"expected an integer, got {describe(value)}")


def _as_number(value: Any, strict: bool) -> int | float:
    number: int | float
    if isinstance(value, bool):
        raise ValueProblem(f"expected a number, got {describe(value)}")
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str) and not strict and _NUMBER.fullmatch(value.strip()):
        text = value.strip()
        number = int(text) if _INTEGER.fullmatch(text) and len(text) <= _MAX_DIGITS else float(text)
    else:
        raise ValueProblem(f"expected a number, got {describe(value)}")
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueProblem(f"expected a finite number, got {describe(value)}")
    return number


def _as_boolean(value: Any, strict: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and not strict:
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueProblem(
        f"expected a boolean (true/false, yes/no or 1/0), got {describe(value)}"
        if not strict
        else f"expected a boolean (true or false), got {describe(value)}"
    )


def _check_enum(spec: InputSpec, value: Any, strict: bool) -> Any:
    allowed = spec.values or []
    for candidate in allowed:
        if _same(candidate, value):
            return candidate
    if isinstance(value, str) and not strict:
        # the original CLI sends "2" for the enum value 2
        text = value.strip()
        for candidate in allowed:
            numeric = isinstance(candidate, int | float) and not isinstance(candidate, bool)
            if numeric and _NUMBER.fullmatch(text) and float(text) == candidate:
                return candidate
    shown = ", ".join(json.dumps(v, default=str) for v in allowed)
    raise ValueProblem(f"{describe(value)} is not one of the allowed values: {shown}")


def _same(candidate: Any, value: Any) -> bool:
    # True == 1 in Python; here a boolean only equals a boolean.
    if isinstance(candidate, bool) or isinstance(value, bool):
        return isinstance(candidate, bool) and isinstance(value, bool) and candidate is value
    if isinstance(candidate, str) or isinstance(value, str):
        return isinstance(candidate, str) and isinstance(value, str) and candidate == value
    return bool(candidate == value)


def _check_list(spec: InputSpec, value: Any, strict: bool) -> list[Any]:
    items = _as_list(value, strict)
    if spec.min_length is not None and len(items) < spec.min_length:
        raise ValueProblem(f"too few items: {len(items)}, at least {spec.min_length}")
    if spec.max_length is not None and len(items) > spec.max_length:
        raise ValueProblem(f"too many items: {len(items)}, at most {spec.max_length}")
    typed: list[Any] = []
    for index, item in enumerate(items):
        try:
            if spec.items == "string":
                text = _as_string(item)
                if spec.pattern is not None and re.fullmatch(spec.pattern, text) is None:
                    raise ValueProblem(
                        f"{describe(text)} does not match the pattern {spec.pattern}"
                    )
                typed.append(text)
            else:
                typed.append(_check_scalar(spec, spec.items, item, strict))
        except ValueProblem as exc:
            raise ValueProblem(f"item {index}: {exc}") from None
    return typed


def _as_list(value: Any, strict: bool) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str) and not strict:
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                raise ValueProblem(
                    "looks like a JSON array but is not valid JSON "
                    '(write ["a","b"], or a,b without brackets)'
                ) from None
            if isinstance(parsed, list):
                return parsed
        if not text:
            return []
        return [part.strip() for part in text.split(",")]
    raise ValueProblem(f"expected a list, got {describe(value)}")
