"""TOSCA intrinsic functions, turned into our templates.

A property value is resolved to either a plain value (string, number, boolean, list, mapping)
or a ``Template``: text in our template language (``{{ inputs.x }}``) rendered when the
workflow runs. ``get_input`` names a workflow input; ``concat`` joins parts; ``get_property``
and ``get_attribute`` read a property of a node (an attribute of these node types is the
property of the same name); ``get_secret: [<vault path>, "data=<key>"]`` (Yorc's syntax)
becomes an entry of the workflow's ``secrets:`` read from our key store, usable only where the
value never reaches a command line (a stage-in URL).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.yamlfile import Location

SUPPORTED_FUNCTIONS = ("get_input", "get_secret", "concat", "get_property", "get_attribute")
_SUPPORTED = ", ".join(SUPPORTED_FUNCTIONS)
_MAX_DEPTH = 16
# Where get_secret may be used, for errors elsewhere.
SECRET_PLACES = "the url of a dls.ansible.nodes.HTTP2SSH node"  # noqa: S105 - not a secret
_GET_SECRET_HINT = 'write {get_secret: [/secret/data/<path>, "data=<key>"]}'  # noqa: S105


class Template(str):
    """Text in our template language, rendered at run time (``{{ inputs.x }}/data``)."""

    __slots__ = ()


class FunctionError(Exception):
    """A function cannot be resolved; carries the problem to report."""

    def __init__(self, problem: ToscaProblem) -> None:
        self.problem = problem
        super().__init__(problem.message)


def literal_text(value: Any) -> str:
    """A plain value as template text: braces that would start a template are escaped."""
    text = "true" if value is True else "false" if value is False else str(value)
    if "{{" in text or "{%" in text or "{#" in text:
        return "{{ " + repr(text) + " | raw }}"
    return text


def as_template(value: Any) -> Template:
    """A resolved value (plain or Template) as template text."""
    if isinstance(value, Template):
        return value
    return Template(literal_text(value))


def is_function(value: Any) -> bool:
    """Whether ``value`` is a one-key mapping naming a function (``{get_input: x}``)."""
    return (
        isinstance(value, dict)
        and len(value) == 1
        and isinstance(next(iter(value)), str)
        and (next(iter(value)).startswith(("get_", "concat", "token", "join")))
    )


class Resolver:
    """Resolves property values of one topology for one workflow (whose inputs it knows)."""

    def __init__(
        self,
        input_names: set[str],
        node_property: Callable[[str, list[str], Location], tuple[Any, Location]],
    ) -> None:
        self.input_names = input_names
        self._node_property = node_property
        # get_secret calls met so far, as our workflow's secrets: {name: {path, key}}
        self.secrets: dict[str, dict[str, str]] = {}
        self._secrets_allowed = False

    def resolve_secret_capable(self, value: Any, loc: Location, node: str) -> Any:
        """Like ``resolve``, for a property whose value never reaches a command line."""
        self._secrets_allowed = True
        try:
            return self.resolve(value, loc, node)
        finally:
            self._secrets_allowed = False

    def resolve(self, value: Any, loc: Location, node: str, depth: int = 0) -> Any:
        """The value with every function replaced; FunctionError if one cannot be."""
        if depth > _MAX_DEPTH:
            raise FunctionError(
                ToscaProblem(loc, "functions nest too deeply (a get_property loop?)", "simplify")
            )
        if is_function(value):
            name, argument = next(iter(value.items()))
            return self._call(name, argument, loc, node, depth)
        if isinstance(value, list):
            return [
                self.resolve(item, (*loc, index), node, depth) for index, item in enumerate(value)
            ]
        if isinstance(value, Mapping):
            return {k: self.resolve(v, (*loc, k), node, depth) for k, v in value.items()}
        return value

    def _call(self, name: str, argument: Any, loc: Location, node: str, depth: int) -> Any:
        if name == "get_input":
            input_name = argument[0] if isinstance(argument, list) and argument else argument
            if not isinstance(input_name, str):
                raise FunctionError(
                    ToscaProblem(loc, "get_input needs an input name", "write {get_input: name}")
                )
            if input_name not in self.input_names:
                declared = ", ".join(sorted(self.input_names)) or "none"
                raise FunctionError(
                    ToscaProblem(
                        loc,
                        f"get_input: input {input_name!r} is not declared",
                        f"declare it under topology_template.inputs or the workflow's inputs "
                        f"(declared: {declared})",
                    )
                )
            return Template("{{ inputs." + input_name + " }}")
        if name == "concat":
            if not isinstance(argument, list):
                raise FunctionError(
                    ToscaProblem(loc, "concat needs a list of parts", "write {concat: [a, b]}")
                )
            parts = [
                as_template(self.resolve(part, (*loc, name, i), node, depth + 1))
                for i, part in enumerate(argument)
            ]
            if not any(isinstance(p, Template) and "{{" in p for p in parts):
                return "".join(parts)
            return Template("".join(parts))
        if name in ("get_property", "get_attribute"):
            if (
                not isinstance(argument, list)
                or len(argument) < 2
                or not all(isinstance(a, str) for a in argument)
            ):
                raise FunctionError(
                    ToscaProblem(
                        loc,
                        f"{name} needs [<node or SELF>, <property>, ...]",
                        f"write {{{name}: [SELF, command]}}",
                    )
                )
            target = node if argument[0] == "SELF" else argument[0]
            found, found_loc = self._node_property(target, list(argument[1:]), loc)
            return self.resolve(found, found_loc, target, depth + 1)
        if name == "get_secret":
            return self._secret(argument, loc)
        raise FunctionError(
            ToscaProblem(
                loc,
                f"unsupported function {name!r}",
                f"use one of the supported functions: {_SUPPORTED}",
            )
        )

    def _secret(self, argument: Any, loc: Location) -> Template:
        """``{{ secrets.<name> }}`` for ``get_secret: [<path>, "data=<key>"]``."""
        if not self._secrets_allowed:
            raise FunctionError(
                ToscaProblem(
                    loc,
                    "get_secret cannot be used in this property: its value would reach a "
                    f"command line; get_secret may be used in {SECRET_PLACES}",
                    "pass the value as a workflow input of type secret, or leave get_secret "
                    "to the keys that are ignored (dls_api_*)",
                )
            )
        parts = argument if isinstance(argument, list) else [argument]
        if not parts or not all(isinstance(p, str) for p in parts):
            raise FunctionError(
                ToscaProblem(loc, "get_secret needs a path and options", _GET_SECRET_HINT)
            )
        keys = [p.partition("=")[2] for p in parts[1:] if p.startswith("data=")]
        others = [p for p in parts[1:] if not p.startswith("data=")]
        if len(keys) != 1 or not keys[0] or others:
            raise FunctionError(
                ToscaProblem(
                    loc,
                    "get_secret needs exactly one option data=<key> (the field of the entry)",
                    _GET_SECRET_HINT,
                )
            )
        entry = {"path": key_store_path(parts[0]), "key": keys[0]}
        base = name = _secret_name(entry["path"], entry["key"])
        count = 1
        while self.secrets.get(name, entry) != entry:  # another pair with the same name
            count += 1
            name = f"{base}_{count}"
        self.secrets[name] = entry
        return Template("{{ secrets." + name + " }}")


def key_store_path(vault_path: str) -> str:
    """Our key store path for a Vault path of the original (``/secret/data/a/b`` -> ``a/b``)."""
    path = vault_path.strip("/")
    for prefix in ("secret/data/", "secret/"):  # the KV v2 mount, as an API or a CLI path
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def _secret_name(path: str, key: str) -> str:
    """A template name for one (path, key): readable, and the same for the same pair."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{path}_{key}").strip("_").lstrip("0123456789") or "s"
