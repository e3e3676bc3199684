"""YAML reading for workflow files: duplicate keys refused, and the line of every key kept."""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Location = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
# Aliases let a small file stand for a huge tree ("billion laughs"); nothing real comes close.
MAX_NODES = 100_000


class YamlFileError(Exception):
    """The text is not usable YAML; ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None) -> None:
        self.message = message
        self.line = line
        super().__init__(message)


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # `<<: *base` may be overridden by the keys that follow it
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # the base class reports unhashable keys
            if key in seen:
                raise ConstructorError(
                    None,
                    None,
                    f"found duplicate key {key!r} (first given on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
# YAML 1.1 reads 1:30:00 as the base-60 number 5400, so `time: 1:30:00` would silently become
# 5400 minutes; YAML 1.2 dropped base 60. These are PyYAML's patterns without it: such
# values stay strings.
_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
_StrictLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))


@dataclass(frozen=True)
class TextPlace:
    """Where a string value's text lies in the file."""

    first: int  # the 1-based line of its first line
    literal: bool  # a literal block (`|`): line n of the text is line first + n - 1 of the file


def load_yaml(text: str) -> tuple[Any, dict[Location, int]]:
    """Parse one YAML document; return its value and the 1-based line of each key path."""
    data, lines, _ = load_yaml_places(text)
    return data, lines


def load_yaml_places(text: str) -> tuple[Any, dict[Location, int], dict[Location, TextPlace]]:
    """``load_yaml``, and also where the text of each string value lies (for lines inside it)."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, {}
        data = loader.construct_document(node)
        lines: dict[Location, int] = {(): node.start_mark.line + 1}
        texts: dict[Location, TextPlace] = {}
        _walk(loader, node, (), (lines, texts), [MAX_NODES])
        return data, lines, texts
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = exc.problem or str(exc)
        if exc.context:
            message += f" ({exc.context})"
        raise YamlFileError(message, line) from exc
    except yaml.YAMLError as exc:
        raise YamlFileError(str(exc), None) from exc
    finally:
        loader.dispose()


def _walk(
    loader: _StrictLoader,
    node: Node,
    loc: Location,
    places: tuple[dict[Location, int], dict[Location, TextPlace]],
    budget: list[int],
) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlFileError(
            f"the document expands to more than {MAX_NODES} values (aliases used too deeply?)",
            node.start_mark.line + 1,
        )
    lines, texts = places
    if isinstance(node, ScalarNode) and loc:
        # a block scalar (| or >) starts on the line after its indicator
        block = node.style in ("|", ">")
        texts[loc] = TextPlace(node.start_mark.line + (2 if block else 1), node.style == "|")
    elif isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = loader.construct_object(key_node)
            if not isinstance(key, str | int):
                key = str(key)
            child = (*loc, key)
            # after a merge (`<<: *base`) the explicit keys come last and win, as in the data
            lines[child] = key_node.start_mark.line + 1
            _walk(loader, value_node, child, places, budget)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*loc, index)
            lines[child] = item.start_mark.line + 1
            _walk(loader, item, child, places, budget)


def line_of(lines: dict[Location, int], loc: Location) -> int | None:
    """The line of ``loc``, or of its nearest enclosing key that has one."""
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return None


def line_in_text(
    lines: dict[Location, int], texts: dict[Location, TextPlace], loc: Location, line: int
) -> int | None:
    """The file's line of line ``line`` (1-based) of the string value at ``loc``.

    Exact for a literal block (`|`); for other styles, whose line breaks YAML folds or escapes,
    the line where the text starts. Without a known text, the line of ``loc`` (``line_of``).
    """
    place = texts.get(loc)
    if place is None:
        return line_of(lines, loc)
    return place.first + line - 1 if place.literal else place.first
