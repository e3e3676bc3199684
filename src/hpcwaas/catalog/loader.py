"""Reading one workflow file into an ApplicationSpec, or every reason it cannot be read."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from hpcwaas.catalog.checks import Problem, check_application
from hpcwaas.catalog.errors import CatalogFileError
from hpcwaas.catalog.kinds import KINDS
from hpcwaas.catalog.model import ApplicationSpec
from hpcwaas.catalog.tosca import ToscaImportError, convert_topology, is_topology
from hpcwaas.catalog.values import describe
from hpcwaas.catalog.yamlfile import (
    Location,
    TextPlace,
    YamlFileError,
    line_in_text,
    line_of,
    load_yaml_places,
)

MAX_FILE_BYTES = 1024 * 1024


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedFile:
    """A valid workflow file."""

    path: Path
    application: ApplicationSpec
    digest: str
    lines: dict[Location, int]
    # A TOSCA topology's cluster login hosts: matched to configured environments at deployment.
    environment_hosts: tuple[str, ...] = ()
    # Per workflow, where a TOSCA topology's cluster login comes from (DeployedWorkflow's
    # login_inputs and default_login).
    logins: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What a TOSCA topology's import reports without refusing it (nodes no workflow runs...).
    warnings: tuple[FileProblem, ...] = ()
    # Why nothing decides a TOSCA topology's environments (see catalog.tosca.sites).
    undecided: str | None = None
    # A TOSCA topology's workflows that are not offered, and why.
    unavailable: dict[str, str] = field(default_factory=dict)

    def line(self, loc: Location) -> int | None:
        """The line of a key path in the file (or of its nearest enclosing key)."""
        return line_of(self.lines, loc)


@dataclass(frozen=True)
class FileProblem:
    """One problem of a workflow file, with its place: what ``validate --output json`` shows."""

    path: Path
    line: int | None
    message: str
    hint: str | None = None
    warning: bool = False  # the file still loads

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else f"{self.path}"
        return f"{where}: {self.message}" + (f" (hint: {self.hint})" if self.hint else "")


def format_problem(path: Path, line: int | None, message: str, hint: str | None) -> str:
    """``<file>:<line>: <message> (hint: <hint>)``, the form editors can jump to."""
    return str(FileProblem(path, line, message, hint))


def _refuse(problems: list[FileProblem]) -> CatalogFileError:
    return CatalogFileError([str(p) for p in problems], problems)


def read_application(path: Path) -> LoadedFile:
    """Load and check one workflow file; raise CatalogFileError listing every problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _refuse(
            [FileProblem(path, None, f"cannot read: {exc.strerror}", "check its permissions")]
        ) from None
    if len(data) > MAX_FILE_BYTES:
        message = f"the file is larger than {MAX_FILE_BYTES} bytes"
        raise _refuse([FileProblem(path, None, message, "split the application")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"the file is not UTF-8 text (byte {exc.start})"
        raise _refuse([FileProblem(path, None, message, "save it as UTF-8")]) from None
    try:
        document, lines, texts = load_yaml_places(text)
    except YamlFileError as exc:
        hint = "fix the YAML syntax; a key may appear only once in a mapping"
        raise _refuse([FileProblem(path, exc.line, exc.message, hint)]) from None
    hosts: tuple[str, ...] = ()
    logins: dict[str, dict[str, Any]] = {}
    warnings: tuple[FileProblem, ...] = ()
    undecided: str | None = None
    terms: dict[Location, str] = {}
    unavailable: dict[str, str] = {}
    if is_topology(document):
        try:
            converted = convert_topology(document, lines, path)
        except ToscaImportError as exc:
            raise _refuse(
                [
                    FileProblem(path, line_of(lines, p.loc), f"TOSCA: {p.message}", p.hint)
                    for p in exc.problems
                ]
            ) from None
        warnings = tuple(
            FileProblem(path, line_of(lines, p.loc), f"TOSCA: {p.message}", p.hint, warning=True)
            for p in converted.warnings
        )
        document, lines, texts = converted.document, converted.lines, {}
        hosts = tuple(converted.environment_hosts)
        logins = converted.logins
        undecided = converted.undecided
        terms = converted.terms
        unavailable = converted.unavailable
    if not isinstance(document, dict):
        message = f"the file must hold a mapping with an application key, not {describe(document)}"
        raise _refuse([FileProblem(path, 1, message, "start with `application: <id>`")])
    try:
        application = ApplicationSpec.model_validate(document)
    except ValidationError as exc:
        raise _refuse(
            [
                FileProblem(path, line_of(lines, loc), message, hint)
                for loc, message, hint in _pydantic_problems(exc)
            ]
        ) from None
    problems = check_application(application)
    if problems:
        raise _refuse([_place(path, lines, texts, p, terms) for p in problems])
    digest = hashlib.sha256(data).hexdigest()
    return LoadedFile(
        path, application, digest, lines, hosts, logins, warnings, undecided, unavailable
    )


def _place(
    path: Path,
    lines: dict[Location, int],
    texts: dict[Location, TextPlace],
    problem: Problem,
    terms: dict[Location, str],
) -> FileProblem:
    message = problem.message
    term = terms.get(problem.loc[:5])
    if term is not None:  # a TOSCA topology's: in its own terms ("node 'Job' property ...")
        message = re.sub(r"^step '[^']*' [^:]*:", f"{term}:", message)
    if len(problem.loc) >= 2 and problem.loc[0] == "workflows":
        message = f"workflow {problem.loc[1]!r}: {message}"
    if problem.line is None:
        line = line_of(lines, problem.loc)
    else:
        line = line_in_text(lines, texts, problem.loc, problem.line)
    return FileProblem(path, line, message, problem.hint)


def _pydantic_problems(exc: ValidationError) -> list[tuple[Location, str, str]]:
    found: list[tuple[Location, str, str]] = []
    for error in exc.errors(include_url=False):
        raw: Location = tuple(p for p in error["loc"] if p != "[key]")
        loc = _without_tag(raw)
        where = ".".join(str(p) for p in loc) or "(top level)"
        kind = error["type"]
        if kind == "extra_forbidden":
            model = _model_at(raw[:-1])
            allowed = ", ".join(_keys(model)) if model else "see docs/workflows.md"
            message = f"{where}: unknown key {loc[-1]!r}"
            hint = f"check the spelling; allowed keys here: {allowed}"
        elif kind == "missing":
            message = f"{where}: missing key {loc[-1]!r}"
            hint = "add it"
        elif kind == "union_tag_not_found":
            message = f"{where}: missing key 'kind'"
            hint = f"add it: every step says its kind ({', '.join(KINDS)})"
        elif kind == "union_tag_invalid":
            loc = (*loc, "kind")
            message = f"{where}.kind: unknown step kind {describe(error['input'].get('kind'))}"
            expected = str(error.get("ctx", {}).get("expected_tags", "")).replace("'", "")
            hint = f"use one of the step kinds: {expected or ', '.join(KINDS)}"
        else:
            message = f"{where}: {error['msg'].removeprefix('Value error, ')}"
            message += f", got {describe(error['input'])}"
            hint = "see docs/workflows.md for the keys and their types"
        found.append((loc, message, hint))
    return found


def _keys(model: type[BaseModel]) -> list[str]:
    """The model's keys, its own before inherited ones (a step's kind and run first)."""
    own = [name for name in vars(model).get("__annotations__", {}) if name in model.model_fields]
    return own + [name for name in model.model_fields if name not in own]


def _without_tag(loc: Location) -> Location:
    """``loc`` without the step kind pydantic inserts after a step's name."""
    if len(loc) > 4 and loc[0] == "workflows" and loc[2] == "steps" and loc[4] in KINDS:
        return (*loc[:4], *loc[5:])
    return loc


def _model_at(loc: Location) -> type[BaseModel] | None:
    """The model that holds the keys at ``loc`` (walking fields, dict values and step kinds)."""
    model: type[BaseModel] = ApplicationSpec
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return None
        annotation: Any = field.annotation
        if get_origin(annotation) is dict:
            if not parts:
                return None
            parts.pop(0)
            annotation = get_args(annotation)[1]
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        if get_origin(annotation) in (Union, UnionType):  # a step: its kind comes next
            if not parts:
                return None
            kind = KINDS.get(str(parts.pop(0)))
            annotation = kind.settings if kind is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def not_placed(loaded: LoadedFile, problems: list[FileProblem]) -> LoadedFile:
    """A topology whose environments nothing decides: not deployed, and said so."""
    problem = FileProblem(
        loaded.path,
        loaded.line(("environments",)),
        f"warning: application {loaded.application.application!r} is not deployed: "
        f"{loaded.undecided}",
        "name its environment with the tag hpcwaas-environments (in the topology's metadata "
        "or its .tags file), or give the environment node a cluster_login_host",
        warning=True,
    )
    log.warning("%s", problem)
    problems.append(problem)
    application = loaded.application.model_copy(update={"environments": []})
    return dataclasses.replace(loaded, application=application)


def placed_by_hosts(
    loaded: LoadedFile, hosts: Mapping[str, str], problems: list[FileProblem]
) -> LoadedFile:
    """A topology's AbstractEnvironments matched to the environments on the same login host."""
    matched = [env for env, host in hosts.items() if host in loaded.environment_hosts]
    if not matched:
        problem = FileProblem(
            loaded.path,
            loaded.line(("environments",)),
            f"warning: no configured environment has the login host "
            f"{', '.join(loaded.environment_hosts)} of application "
            f"{loaded.application.application!r}; it is not deployed",
            "configure an environment with that host, or name environments with the tag "
            "hpcwaas-environments (in the topology's metadata or its .tags file)",
            warning=True,
        )
        log.warning("%s", problem)
        problems.append(problem)
    application = loaded.application.model_copy(update={"environments": matched})
    return dataclasses.replace(loaded, application=application)
