"""Stand-ins of two Data Logistics Service DAGs whose real backends cannot run here.

The DLS's ``webdav_stagein`` resolves a data catalogue ID to a WebDAV directory, and its
``mlflow_upload_model`` uploads a model to an MLflow server: neither a data catalogue, a
WebDAV server nor an MLflow server runs on the test machine. These DAGs keep the DAG IDs and
the params of eflows4hpc/dls-dags (what hpcwaas's ``dag_run`` steps send), log in to the
cluster exactly as dags/dls_transfers.py does (the user's key read from the Vault at
``ssh-credentials/<vault_id>``, host keys from the variable ``ssh_known_hosts``), and do
their work against stand-ins:

- ``webdav_stagein`` (params ``oid``, ``target``, ``force`` and the cluster account
  ``vault_id``, ``host``, ``port``, ``login``): the data catalogue is the Airflow variable
  ``stand_in_datacat``, a JSON map of ``oid`` to ``{"url": <a directory URL ending with />,
  "files": [<paths under it>]}`` (the tests serve them with tests/http_files.py). As the DLS
  copies a WebDAV directory, each file goes to ``<target>/<the directory's name>/<path>``;
  with ``force`` false an existing file is kept. An ID missing from the catalogue fails the
  run (the DLS's only prints it).
- ``mlflow_upload_model`` (params ``location``, ``subfolder`` as the TOSCA component sends
  it, and the cluster account): the model repository is the directory named by the Airflow
  variable ``stand_in_model_repository`` on the Airflow host. Every file under
  ``<location>/<subfolder>`` (``<location>`` without one) on the cluster is copied to
  ``<repository>/<run ID>/``, each logged as uploaded. A directory with no file fails the run.
"""

from __future__ import annotations

import json
import os
import posixpath
import shlex
import stat
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

from airflow.decorators import dag, task
from airflow.models import Variable
from airflow.models.param import Param
from dls_transfers import CHUNK, _client, _private_key

START = datetime(2024, 1, 1)
ACCOUNT = {
    "vault_id": Param("", type="string"),
    "host": Param("", type="string"),
    "port": Param(22, type="integer"),
    "login": Param("", type="string"),
}


def _variable(name: str, what: str) -> str:
    value = Variable.get(name, default_var="")
    if not value:
        raise ValueError(f"the Airflow variable {name} is not set: give it {what}")
    return str(value)


def _dataset(oid: str) -> dict[str, Any]:
    """The stand-in data catalogue's entry of ``oid``."""
    if not oid:
        raise ValueError("no oid given: pass the data catalogue ID of the dataset")
    catalogue = json.loads(_variable("stand_in_datacat", "a JSON map of oid to url and files"))
    entry = catalogue.get(oid)
    if not isinstance(entry, dict) or not entry.get("url", "").endswith("/"):
        raise ValueError(f"oid {oid!r} is not in the data catalogue (stand_in_datacat)")
    return entry


@dag(dag_id="webdav_stagein", schedule=None, start_date=START, catchup=False,
     tags=["hpcwaas", "dls", "stand-in"],
     params={**ACCOUNT, "target": Param("/tmp/", type="string"),
             "force": Param(True, type="boolean"), "oid": Param("", type="string")})  # fmt: skip
def webdav_stagein() -> None:
    @task
    def load(**context: object) -> int:
        params = context["params"]
        assert isinstance(params, dict)
        entry = _dataset(params["oid"])
        directory = posixpath.basename(urllib.parse.urlsplit(entry["url"]).path.rstrip("/"))
        key = _private_key(params["vault_id"])
        client = _client(params["host"], int(params["port"]), params["login"], key)
        copied = 0
        try:
            sftp = client.open_sftp()
            for name in entry["files"]:
                target = posixpath.join(params["target"], directory, name)
                try:
                    size = sftp.stat(target).st_size
                except FileNotFoundError:
                    size = None
                if size and not params["force"]:
                    print(f"File {target} exists and has {size} bytes: kept")
                    continue
                _, made, _ = client.exec_command(
                    f"mkdir -p -- {shlex.quote(posixpath.dirname(target))}"
                )
                made.channel.recv_exit_status()
                url = entry["url"] + urllib.parse.quote(name)
                print(f"Copying {url} --> {target}")
                with (
                    urllib.request.urlopen(url, timeout=60) as answer,
                    sftp.open(target, "wb") as out,
                ):
                    out.set_pipelined(True)
                    while chunk := answer.read(CHUNK):
                        out.write(chunk)
                copied += 1
        finally:
            client.close()
        print(f"Copied {copied} files")
        return copied

    load()


@dag(dag_id="mlflow_upload_model", schedule=None, start_date=START, catchup=False,
     tags=["hpcwaas", "dls", "stand-in"],
     params={**ACCOUNT, "location": Param("/tmp/", type="string"),
             "subfolder": Param("", type="string")})  # fmt: skip
def mlflow_upload_model() -> None:
    @task
    def upload(**context: object) -> list[str]:
        params = context["params"]
        assert isinstance(params, dict)
        repository = _variable("stand_in_model_repository", "the model repository's directory")
        destination = os.path.join(repository, str(context["run_id"]))
        source = posixpath.join(params["location"], params["subfolder"] or "")
        key = _private_key(params["vault_id"])
        client = _client(params["host"], int(params["port"]), params["login"], key)
        uploaded: list[str] = []
        try:
            sftp = client.open_sftp()
            try:
                sftp.listdir(source)
            except FileNotFoundError:
                raise ValueError(f"{source} is not a directory on the cluster") from None
            pending = [""]
            while pending:
                relative = pending.pop()
                for entry in sftp.listdir_attr(posixpath.join(source, relative)):
                    name = posixpath.join(relative, entry.filename)
                    if stat.S_ISDIR(entry.st_mode or 0):
                        pending.append(name)
                        continue
                    local = os.path.join(destination, *name.split("/"))
                    os.makedirs(os.path.dirname(local), exist_ok=True)
                    sftp.get(posixpath.join(source, name), local)
                    print(f"Uploaded {posixpath.join(source, name)} ({entry.st_size} bytes)")
                    uploaded.append(name)
        finally:
            client.close()
        if not uploaded:
            raise ValueError(f"no model file under {source}: nothing uploaded")
        print(f"Uploaded {len(uploaded)} files to the model repository as {context['run_id']}")
        return sorted(uploaded)

    upload()


webdav_stagein()
mlflow_upload_model()
