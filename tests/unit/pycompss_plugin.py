"""The PyCOMPSs Yorc plugin's submission command, rebuilt as its Go code builds it.

eflows4hpc/pycompss-yorc-plugin (job/node_properties.go, job/execution.go) resolves a
PyCOMPSJob's properties with the workflow inputs, exports every input, and runs one
``bash -c`` line ending in ``pycompss ... job submit ... <options> <command> <arguments>``.
``plugin_words`` builds that line the same way and runs it with bash, ``pycompss`` replaced by
a function printing its arguments: the words the plugin would have handed to PyCOMPSs.
Benign values only: the plugin's line re-reads values as shell text (the injection our
importer closes), so hostile values are not compared here.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

_PREFIX = "PyCOMPSs_"


def plugin_words(node: str, properties: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    """The words after ``-d`` of the plugin's ``pycompss job submit`` for these inputs."""
    given = {k: "" if v is None else str(v) for k, v in inputs.items()}
    env: dict[str, str] = {}
    own = f"{node}_{_PREFIX}"
    env.update({k: v for k, v in given.items() if not k.startswith((_PREFIX, own))})
    env.update({k[len(_PREFIX) :]: v for k, v in given.items() if k.startswith(_PREFIX)})
    env.update({k[len(own) :]: v for k, v in given.items() if k.startswith(own)})
    submission = dict(properties.get("submission_params") or {})
    application = dict(properties.get("application") or {})
    container = dict(application.get("container_opts") or {})
    for name in ("qos", "extra_compss_opts", "num_nodes"):
        for key in (name, f"{node}_{name}"):  # the node's own input is applied last
            if given.get(key, "") != "":
                submission[name] = given[key]
    line = "".join(f"export {k}={json.dumps(v)} ; " for k, v in env.items() if "-" not in k)
    line += "pycompss --env_id E job submit -app A -d "
    if int(submission.get("num_nodes") or 0):
        line += f"--num_nodes={int(submission['num_nodes'])} "
    for name in ("qos", "python_interpreter"):
        if submission.get(name):
            line += f"--{name}={submission[name]} "
    if submission.get("extra_compss_opts"):
        line += f"{submission['extra_compss_opts']} "
    for name in ("container_image", "container_compss_path", "container_opts"):
        if container.get(name):
            line += f"--{name}={container[name]} "
    line += f"{application['command']} "
    line += " ".join(str(a) for a in application.get("arguments") or [])
    script = "pycompss() { printf '%s\\0' \"$@\"; }; " + line
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, check=True, env={"PATH": "/usr/bin:/bin"}
    )
    words = result.stdout.decode().split("\0")[:-1]
    return words[words.index("-d") + 1 :]


def options_and_words(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """``--name=value`` options (the last one of a name wins) and the words after them."""
    options: dict[str, str] = {}
    index = 0
    while index < len(words) and words[index].startswith("--"):
        name, _, value = words[index].partition("=")
        options[name] = value
        index += 1
    return options, words[index:]
