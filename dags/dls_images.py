"""The Data Logistics Service's image transfer, for a site that runs its own Airflow.

``transfer_image``, to the contract of eflows4hpc/dls-dags (image_transfer.py), which
hpcwaas's ``image_transfer`` steps trigger on an environment with an Airflow: stream a
container image from the Image Creation service onto a cluster over SFTP. Params:
``image_id`` (the image's file name), ``url`` (the service's download URL, ending with /:
the image is at ``url + image_id``), ``target`` (the directory on the cluster; relative: to
the account's home), ``force`` (replace an image of that name), ``vault_path`` (the Vault
path of a ``user``/``password`` account for the download; '' for none), and the cluster
account as plainhttp2ssh takes it: ``vault_id``, ``host``, ``port``, ``login``.

Unlike the original, the image is written under a temporary name and renamed once whole:
a cut download, or one whose size differs from its Content-Length, leaves nothing at the
image's path.
"""

from __future__ import annotations

import base64
import posixpath
import shlex
import urllib.request
import uuid
from datetime import datetime

from airflow.decorators import dag, task
from airflow.models.param import Param
from airflow.providers.hashicorp.hooks.vault import VaultHook
from dls_transfers import CHUNK, VAULT_CONNECTION, _client, _private_key


def _authorization(vault_path: str) -> dict[str, str]:
    """Basic auth from the Vault's ``user`` and ``password`` at ``vault_path``, if any."""
    if not vault_path:
        return {}
    secret = VaultHook(vault_conn_id=VAULT_CONNECTION).get_secret(secret_path=vault_path)
    if not secret or "user" not in secret or "password" not in secret:
        raise ValueError(f"no user and password in the Vault at {vault_path}")
    token = base64.b64encode(f"{secret['user']}:{secret['password']}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dag(
    dag_id="transfer_image",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["hpcwaas", "dls"],
    params={
        "vault_id": Param("", type="string"),
        "host": Param("", type="string"),
        "port": Param(22, type="integer"),
        "login": Param("", type="string"),
        "image_id": Param("", type="string"),
        "url": Param("", type="string"),
        "target": Param("", type="string"),
        "force": Param(True, type="boolean"),
        "vault_path": Param("", type="string"),
    },
)
def transfer_image() -> None:
    @task
    def stream_upload(**context: object) -> int:
        params = context["params"]
        assert isinstance(params, dict)
        name, base = params["image_id"], params["url"]
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"image_id must be a file name, got {name[:80]!r}")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"url must be http:// or https://, got {base[:80]!r}")
        url = base if base.endswith("/") else base + "/"
        url += urllib.request.quote(name)
        target = posixpath.join(params["target"] or ".", name)
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
            partial = posixpath.join(directory, f".{name}.{uuid.uuid4().hex}.part")
            print(f"Copying {url} to {params['login']}@{params['host']}:{target}")
            request = urllib.request.Request(url, headers=_authorization(params["vault_path"]))  # noqa: S310
            written = 0
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
                    announced = answer.headers.get("Content-Length")
                    with sftp.open(partial, "wb") as out:
                        out.set_pipelined(True)
                        while chunk := answer.read(CHUNK):
                            out.write(chunk)
                            written += len(chunk)
                if announced is not None and int(announced) != written:
                    raise ValueError(f"size mismatch: {written} bytes of {announced} announced")
                sftp.posix_rename(partial, target)
            except BaseException:
                try:
                    sftp.remove(partial)
                except OSError:
                    pass
                raise
            print(f"Copied {written} bytes")
            return written
        finally:
            client.close()

    stream_upload()


transfer_image()
