"""`hpcwaas-api workflows validate` and `hpcwaas-api catalog reload`.

``validate`` loads files with the server's own loader (``Catalog.load``), so a file it accepts
is a file the server serves. ``catalog reload`` checks the configured directories the same way,
then sends SIGHUP to the server whose process ID is in ``<data_dir>/hpcwaas-api.pid``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hpcwaas.catalog.catalog import Catalog
from hpcwaas.catalog.loader import FileProblem
from hpcwaas.server.catalog_reload import pid_file
from hpcwaas.server.runtime import catalog_for


class NoRunningServer(Exception):
    """No server runs with this data_dir; the message says what was looked for."""


def add_catalog_commands(
    sub: Any, command: Callable[[str, str, Any], argparse.ArgumentParser]
) -> None:
    """Add `workflows validate` and `catalog reload` to the subcommands ``sub`` of hpcwaas-api."""
    workflows = sub.add_parser("workflows", help="workflow files").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    validate = command(
        "validate",
        "check workflow files as the server loads them; print every problem with its line",
        workflows,
    )
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files or dirs")
    validate.add_argument(
        "-o", "--output", choices=["text", "json"], default="text", help="text (default) or json"
    )
    catalog = sub.add_parser("catalog", help="the catalog of a running server").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    command(
        "reload",
        "check the catalog directories, then have the running server (same --config and "
        "--data_dir) load them again",
        catalog,
    )


def configured_catalog(settings: Any, dirs: list[Path]) -> Catalog:
    """Load ``dirs`` against the environments of ``settings``, as the server does."""
    with _quiet_loader():
        return catalog_for(settings, dirs)


def validate_command(settings: Any, args: argparse.Namespace) -> int:
    """`workflows validate FILE...`: exit 1 if any file has an error, 0 otherwise."""
    files: list[Path] = list(args.files)
    if settings.embedded_default:
        # No config: each file's environments are taken as given, whatever their kind.
        with _quiet_loader():
            catalog = Catalog.load(files, None)
    else:
        catalog = configured_catalog(settings, files)
    report = _report(catalog)
    if args.output == "json":
        print(json.dumps(report, indent=2))
    else:
        _print_text(report)
    return 1 if report["errors"] else 0


def reload_command(settings: Any, args: argparse.Namespace) -> int:
    """`catalog reload`: print the problems of the configured directories, then signal."""
    catalog = configured_catalog(settings, list(settings.catalog_dirs))
    report = _report(catalog)
    for problem in catalog.file_problems:
        print(problem, file=sys.stderr)
    pid = running_server(settings.data_dir)
    os.kill(pid, signal.SIGHUP)
    loaded = sum(1 for f in report["files"] if f["loaded"])
    print(
        f"Asked the server (pid {pid}) to reload its catalog: {loaded} file(s) load, "
        f"{len(catalog.refused)} refused, {len(catalog.workflows)} workflows."
    )
    return 1 if report["errors"] else 0


def running_server(data_dir: Path) -> int:
    """The process ID of the server running with ``data_dir``; NoRunningServer if none."""
    path = pid_file(data_dir)
    try:
        pid = int(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        raise NoRunningServer(
            f"no server is running with data_dir {data_dir} (no {path}); start it with "
            "`hpcwaas-api serve`, or give the same --config/--data_dir as the server"
        ) from None
    except (OSError, ValueError) as exc:
        raise NoRunningServer(f"cannot read the server's pid file {path}: {exc}") from None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise NoRunningServer(
            f"no server is running with data_dir {data_dir}: process {pid} named in {path} "
            "has ended (the file is left from a server that was killed); start the server"
        ) from None
    except PermissionError:
        pass  # it exists; the SIGHUP itself will say whether we may signal it
    return pid


@contextlib.contextmanager
def _quiet_loader() -> Iterator[None]:
    # The commands print every problem themselves; the loader's log lines would repeat them.
    logger = logging.getLogger("hpcwaas.catalog")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _report(catalog: Catalog) -> dict[str, Any]:
    """Every file with its problems; ``errors`` counts those that refuse a file or deployment."""
    by_file: dict[str, list[FileProblem]] = {}
    for path in catalog.files:  # in the order given
        by_file.setdefault(str(path), [])
    for problem in catalog.file_problems:
        by_file.setdefault(str(problem.path), []).append(problem)
    loaded = {str(p) for p in catalog.sources.values()}
    files = []
    for name, problems in by_file.items():
        workflows = sorted(wf.id for wf in catalog.workflows.values() if str(wf.source) == name)
        files.append(
            {
                "file": name,
                "loaded": name in loaded,
                "workflows": workflows,
                "problems": [
                    {
                        "line": p.line,
                        "message": p.message,
                        "hint": p.hint,
                        "severity": "warning" if p.warning else "error",
                        "text": str(p),
                    }
                    for p in problems
                ],
            }
        )
    errors = sum(1 for p in catalog.file_problems if not p.warning)
    return {"files": files, "errors": errors}


def _print_text(report: dict[str, Any]) -> None:
    for entry in report["files"]:
        for problem in entry["problems"]:
            print(problem["text"])
    for entry in report["files"]:
        errors = sum(1 for p in entry["problems"] if p["severity"] == "error")
        warnings = len(entry["problems"]) - errors
        if errors:
            continue
        note = f", {warnings} warning(s)" if warnings else ""
        print(f"{entry['file']}: ok, {len(entry['workflows'])} workflow(s){note}")
    if report["errors"]:
        print(f"{report['errors']} problem(s) found", file=sys.stderr)
