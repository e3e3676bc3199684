"""A PyCOMPSJob node turned into a ``pycompss`` step, as the PyCOMPSs Yorc plugin ran it.

The plugin ran one ``bash -c`` line: ``--num_nodes=``, ``--qos=``, ``--python_interpreter=``,
the ``extra_compss_opts`` text, the container options, the command and the arguments joined
by spaces, after exporting every workflow input as an environment variable. Here:

- every string it put on that line is read in its dialect (``dialect.split_words``): the
  author's text gives the words, ``$name`` the value of a variable inside its word;
- a variable ``x`` is the input ``<Node>_PyCOMPSs_x`` if given, else ``PyCOMPSs_x``, else
  ``x`` (the plugin's export order); naming none of them is a load error;
- ``qos``, ``num_nodes`` and ``extra_compss_opts`` come from the input ``<Node>_<name>`` if
  given, else ``<name>``, else the property (the plugin's overrides);
- an option of ``extra_compss_opts`` that our step has a key for (``--exec_time=``,
  ``--qos=``, ``--container_opts=``...) sets that key, so that the command carries it once,
  with the value the plugin's line gave enqueue_compss (the last one written);
- every input is exported to the job's environment, ``PyCOMPSs_x`` inputs as ``x``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hpcwaas.catalog.tosca.dialect import (
    DialectError,
    Word,
    literal_word,
    split_words,
    variables,
    word_template,
)
from hpcwaas.catalog.tosca.functions import Template
from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.tosca.tags import INPUTS_TAG, PROPERTIES_TAG
from hpcwaas.catalog.yamlfile import Location
from hpcwaas.schedulers.pycompss import check_compss_option, check_compss_word
from hpcwaas.schedulers.slurm_options import check_slurm_name

PLUGIN_PREFIX = "PyCOMPSs_"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# extra_compss_opts options that set a key of our step; a property given after the extra
# options on the plugin's line (the container ones) wins over them.
_LIFTED = {
    "num_nodes": False,
    "qos": False,
    "exec_time": False,
    "python_interpreter": False,
    "container_image": True,
    "container_compss_path": True,
    "container_opts": True,
}
_SINGLE = (
    "qos",
    "python_interpreter",
    "container_image",
    "container_compss_path",
    "container_opts",
)


@dataclass(frozen=True)
class PycompssProperty:
    """One property of the node: its TOSCA name (``submission_params.qos``), value, place."""

    name: str
    value: Any
    loc: Location


class PycompssConversion:
    """The ``pycompss`` step of one node, its problems added to ``problems`` and what the
    topology leaves out to ``gaps`` (``nodes.NodeConverter``)."""

    def __init__(
        self,
        node: str,
        input_names: set[str],
        problems: list[ToscaProblem],
        gaps: list[ToscaProblem],
    ) -> None:
        self.node = node
        self.input_names = input_names
        self.problems = problems
        self.gaps = gaps

    def _problem(
        self, prop: PycompssProperty, message: str, hint: str, *, gap: bool = False
    ) -> None:
        found = ToscaProblem(prop.loc, f"node {self.node!r} property {prop.name} {message}", hint)
        (self.gaps if gap else self.problems).append(found)

    # --- words --------------------------------------------------------------------------

    def variable(self, name: str) -> str | None:
        """The expression of ``$name`` in this node, or None when nothing sets it."""
        chain = [
            n
            for n in (f"{self.node}_{PLUGIN_PREFIX}{name}", f"{PLUGIN_PREFIX}{name}", name)
            if n in self.input_names
        ]
        return " or ".join(f"inputs.{n}" for n in chain) or None

    def words(self, prop: PycompssProperty) -> list[str] | None:
        """The property's words as templates; None after reporting a problem."""
        value = prop.value
        if value is None:
            return []
        if isinstance(value, Template):  # a function's value: one word, never split
            return [str(value)]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self._problem(prop, "must be text", "write the words as a string")
            return None
        try:
            split = split_words(str(value))
        except DialectError as exc:
            self._problem(prop, str(exc), "write words, quotes and $name only")
            return None
        unknown = [n for n in variables(split) if self.variable(n) is None]
        for name in unknown:
            # The plugin's bash made it an empty word: here the operator declares it.
            declared = ", ".join(sorted(self.input_names)) or "none"
            self._problem(
                prop,
                f"uses ${name}, which is neither a workflow input nor a variable the plugin "
                f"sets ({PLUGIN_PREFIX}{name}, {self.node}_{PLUGIN_PREFIX}{name})",
                f"declare the input in the tags file ({INPUTS_TAG}: {{{name}: string}}) or "
                f"among the workflow's inputs (declared: {declared})",
                gap=True,
            )
        if unknown:
            return None
        return [word_template(w, lambda n: self.variable(n) or "") for w in split]

    def _literal_words(self, prop: PycompssProperty) -> list[Word]:
        value = prop.value
        if not isinstance(value, (str, int, float)) or isinstance(value, (bool, Template)):
            return []
        try:
            return split_words(str(value))
        except DialectError:
            return []  # reported by words()

    def _chain(self, name: str, fallback: str | None, *, raw: bool = False) -> str | None:
        """The plugin's override of a property: input ``<Node>_<name>``, then ``<name>``.

        ``raw``: the input's value is inserted as is (read as several options, each checked).
        """
        declared = [n for n in (f"{self.node}_{name}", name) if n in self.input_names]
        if not declared:
            return fallback
        text = ""
        for index, input_name in enumerate(declared):
            keyword = "if" if index == 0 else "elif"
            value = f"inputs.{input_name}" + (" | raw" if raw else "")
            text += f"{{% {keyword} inputs.{input_name} %}}{{{{ {value} }}}}"
        if fallback:
            text += "{% else %}" + fallback
        return Template(text + "{% endif %}")

    def one_word(self, prop: PycompssProperty) -> str | None:
        """A property that gives one option's value: at most one word."""
        words = self.words(prop)
        if words is None or not words:
            return None
        if len(words) > 1:
            self._problem(
                prop,
                f"gives {len(words)} words where the plugin's command line takes one",
                "write one word (quote it if it holds blanks)",
            )
            return None
        return words[0] if words[0] != "{{ '' }}" else None

    # --- the step -----------------------------------------------------------------------

    def step(self, props: dict[str, PycompssProperty]) -> dict[str, Any]:
        """Our ``pycompss`` step's keys (no ``modules``, ``env`` or ``needs``)."""
        step: dict[str, Any] = {"kind": "pycompss"}
        command = self.words(props["command"])
        if command == []:  # the plugin's line would have had no application
            self._problem(
                props["command"],
                "is empty: there is no application to run (the plugin ran enqueue_compss "
                "without one)",
                "give the application in the topology (application.command), or in the tags "
                f"file ({PROPERTIES_TAG}: {{{self.node}: {{application: {{command: <path>}}}}}})",
                gap=True,
            )
        command = command or []
        arguments: list[str] = []
        for prop in props["arguments"].value or []:
            arguments += self.words(prop) or []
        if command:
            step["app"] = command[0]
            arguments = command[1:] + arguments
        step["arguments"] = arguments
        self._check_literal_words(props)
        lifted, extra = self._extra_options(props["extra_compss_opts"])
        for key in _SINGLE:
            if key not in props:
                continue
            value = self.one_word(props[key])
            self._check_literal(props[key], key)
            if key == "qos":
                value = self._chain("qos", value)
            if key in lifted and (value is None or not _LIFTED[key]):
                value = lifted[key]
            if value is not None:
                step[key] = value
        num_nodes = props["num_nodes"].value
        if isinstance(num_nodes, str) and not isinstance(num_nodes, Template):
            num_nodes = self.one_word(props["num_nodes"])
        elif num_nodes is not None and not isinstance(num_nodes, int):
            num_nodes = str(num_nodes)
        num_nodes = lifted.get("num_nodes") or self._chain(
            "num_nodes", None if num_nodes is None else str(num_nodes)
        )
        if num_nodes not in (None, ""):
            step["num_nodes"] = int(num_nodes) if str(num_nodes).isdigit() else num_nodes
        if "exec_time" in lifted:
            exec_time = lifted["exec_time"]
            step["exec_time"] = int(exec_time) if exec_time.isdigit() else exec_time
        if extra:
            step["extra_options"] = extra
        step["env"] = self.env()
        return step

    def _extra_options(self, prop: PycompssProperty) -> tuple[dict[str, str], list[str]]:
        """Options our step has keys for, and the other options (one template each)."""
        words = self.words(prop) or []
        literal = self._literal_words(prop)
        lifted: dict[str, str] = {}
        kept: list[str] = []
        for index, template in enumerate(words):
            text = literal_word(literal[index]) if index < len(literal) else None
            head = (text if text is not None else template).split("=", 1)[0]
            name = head.removeprefix("--")
            if head.startswith("--") and name in _LIFTED and "=" in template:
                lifted[name] = template.split("=", 1)[1]
            elif head == "--lang":
                if template != "--lang=python":
                    self._problem(prop, f"sets {template!r}", "a PyCOMPSJob runs Python")
            elif text is not None and (problem := check_compss_option(text)) is not None:
                self._problem(prop, f"word {index + 1}: {problem}", "write --name=value options")
            else:
                kept.append(template)
        if not {f"{self.node}_extra_compss_opts", "extra_compss_opts"} & self.input_names:
            return lifted, kept
        return lifted, [str(self._chain("extra_compss_opts", " ".join(kept), raw=True))]

    def _check_literal(self, prop: PycompssProperty, key: str) -> None:
        """A literal option value that the command line could not carry."""
        words = self._literal_words(prop)
        value = literal_word(words[0]) if len(words) == 1 else None
        if not value:
            return  # absent, or from inputs: checked when the job is submitted
        check = check_slurm_name if key == "qos" else check_compss_word
        problem = check(value)
        if problem is not None:
            self._problem(prop, problem, "write a value of letters, digits and _ . -")

    def _check_literal_words(self, props: dict[str, PycompssProperty]) -> None:
        """Literal words of the command line that enqueue_compss could not pass."""
        for prop in [props["command"], *(props["arguments"].value or [])]:
            for word in self._literal_words(prop):
                text = literal_word(word)
                if text is not None and (problem := check_compss_word(text)) is not None:
                    self._problem(
                        prop,
                        f"word {text[:60]!r}: {problem}",
                        "enqueue_compss passes its words through a shell unquoted",
                    )

    def env(self) -> dict[str, str]:
        """The inputs exported to the job, as the plugin exported them."""
        names: dict[str, None] = {}
        own = f"{self.node}_{PLUGIN_PREFIX}"
        for name in sorted(self.input_names):
            variable = name.removeprefix(own).removeprefix(PLUGIN_PREFIX)
            if _ENV_NAME.fullmatch(variable):
                names[variable] = None
        return {n: "{{ " + str(self.variable(n)) + " }}" for n in names}
