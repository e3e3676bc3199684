"""Two Data Logistics Service transfers, for a site that runs its own Airflow.

DAGs to the contract of eflows4hpc/dls-dags, which hpcwaas's ``dag_run`` steps trigger as
they trigger the DLS's:

- ``plainhttp2ssh``: download a file over HTTP(S) and copy it onto a cluster over SSH. Params:
  ``vault_id`` (the SSH key ID whose private key is read from the Vault at
  ``ssh-credentials/<vault_id>``, field ``privateKey``), ``host``, ``port``, ``login`` (the
  cluster account), ``url`` (http:// or https://), ``target`` (the file's path on the
  cluster; relative: to the account's home) and ``force`` (replace an existing file).
- ``ssh2ssh``: copy a file from one cluster account to another (or the same). Params: the
  same ``vault_id``, ``host``, ``port``, ``login`` and a ``path``, each prefixed ``source_``
  and ``target_``.

The Vault is the Airflow connection ``my_vault`` (type ``vault``, as on the DLS: e.g. AppRole
with ``auth_type`` ``approle`` and ``kv_engine_version`` 2 in its extra). The cluster's host
keys are the Airflow variable ``ssh_known_hosts`` (known_hosts lines, ``[host]:port`` for a
port other than 22); any other host key is refused.
"""

from __future__ import annotations

import io
import posixpath
import shlex
import urllib.request
from datetime import datetime

import paramiko
from airflow.decorators import dag, task
from airflow.models import Variable
from airflow.models.param import Param
from airflow.providers.hashicorp.hooks.vault import VaultHook

VAULT_CONNECTION = "my_vault"
CHUNK = 1024 * 1024


def _private_key(vault_id: str) -> paramiko.PKey:
    """The user's key, read from the Vault where hpcwaas's key-gen stored it."""
    secret = VaultHook(vault_conn_id=VAULT_CONNECTION).get_secret(
        secret_path=f"ssh-credentials/{vault_id}"
    )
    if not secret or "privateKey" not in secret:
        raise ValueError(f"no private key in the Vault at ssh-credentials/{vault_id}")
    text = secret["privateKey"]
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text))
        except paramiko.SSHException:
            continue
    raise ValueError(f"the key at ssh-credentials/{vault_id} is not a key paramiko reads")


def _client(host: str, port: int, login: str, key: paramiko.PKey) -> paramiko.SSHClient:
    """An SSH connection to the cluster, its host key checked against ``ssh_known_hosts``."""
    known = Variable.get("ssh_known_hosts", default_var="")
    if not known.strip():
        raise ValueError(
            "the Airflow variable ssh_known_hosts is not set: give it the known_hosts lines "
            "of the clusters this DAG copies to"
        )
    client = paramiko.SSHClient()
    for line in known.splitlines():
        entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
        if entry is not None:
            for name in entry.hostnames:
                client.get_host_keys().add(name, entry.key.get_name(), entry.key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(host, port=port, username=login, pkey=key, allow_agent=False,
                   look_for_keys=False, timeout=30)  # fmt: skip
    return client


@dag(
    dag_id="plainhttp2ssh",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["hpcwaas", "dls"],
    params={
        "vault_id": Param("", type="string"),
        "host": Param("", type="string"),
        "port": Param(22, type="integer"),
        "login": Param("", type="string"),
        "url": Param("", type="string"),
        "target": Param("", type="string"),
        "force": Param(True, type="boolean"),
    },
)
def plainhttp2ssh() -> None:
    @task
    def stream_upload(**context: object) -> int:
        params = context["params"]
        assert isinstance(params, dict)
        url, target = params["url"], params["target"]
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be http:// or https://, got {url[:80]!r}")
        key = _private_key(params["vault_id"])
        client = _client(params["host"], int(params["port"]), params["login"], key)
        try:
            sftp = client.open_sftp()
            try:
                size = sftp.stat(target).st_size
            except FileNotFoundError:
                size = None
            if size is not None and not params["force"]:
                print(f"{target} exists ({size} bytes) and force is false: kept")
                return 0
            directory = posixpath.dirname(target)
            if directory:
                _, out, _ = client.exec_command(f"mkdir -p -- {shlex.quote(directory)}")
                out.channel.recv_exit_status()
            print(f"Copying {url} to {params['login']}@{params['host']}:{target}")
            written = 0
            with urllib.request.urlopen(url, timeout=60) as answer, sftp.open(target, "wb") as out:  # noqa: S310
                out.set_pipelined(True)
                while chunk := answer.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
            print(f"Copied {written} bytes")
            return written
        finally:
            client.close()

    stream_upload()


plainhttp2ssh()


@dag(
    dag_id="ssh2ssh",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["hpcwaas", "dls"],
    params={
        **{
            f"{side}_{key}": param
            for side in ("source", "target")
            for key, param in (
                ("vault_id", Param("", type="string")),
                ("host", Param("", type="string")),
                ("port", Param(22, type="integer")),
                ("login", Param("", type="string")),
                ("path", Param("", type="string")),
            )
        }
    },
)
def ssh2ssh() -> None:
    @task
    def copy(**context: object) -> int:
        params = context["params"]
        assert isinstance(params, dict)
        ends = []
        for side in ("source", "target"):
            key = _private_key(params[f"{side}_vault_id"])
            host, port = params[f"{side}_host"], int(params[f"{side}_port"])
            ends.append(_client(host, port, params[f"{side}_login"], key))
        source, target = ends
        try:
            source_path, target_path = params["source_path"], params["target_path"]
            directory = posixpath.dirname(target_path)
            if directory:
                _, out, _ = target.exec_command(f"mkdir -p -- {shlex.quote(directory)}")
                out.channel.recv_exit_status()
            print(f"Copying {source_path} to {target_path}")
            written = 0
            with (
                source.open_sftp().open(source_path, "rb") as inp,
                target.open_sftp().open(target_path, "wb") as out,
            ):
                while chunk := inp.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
            print(f"Copied {written} bytes")
            return written
        finally:
            source.close()
            target.close()

    copy()


ssh2ssh()
