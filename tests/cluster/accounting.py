"""Slurm accounting for the test cluster: a throwaway MariaDB server and slurmdbd on it.

Started by tests/cluster_support.py before slurmctld, with every file under the session's
directory: MariaDB's data, socket and log (owned by ``mysql``), slurmdbd's config (mode
0600, owned by ``slurm``, with a password made for the session), pid file and log. Both
listen on 127.0.0.1, on free ports. Debian's mariadb-server and slurmdbd provide them
(scripts/install-test-deps.sh); a missing one fails the cluster's start with that hint.
"""

from __future__ import annotations

import os
import pwd
import secrets
import socket
import subprocess
import time
from pathlib import Path

from tests.cluster.processes import log_tail, read_pid

CLUSTER_NAME = "hpcwaas-test"  # ClusterName in slurm.conf.in
DATABASE = "slurm_acct_db"
TIMEOUT = 60.0
INSTALL_HINT = "scripts/install-test-deps.sh installs it (Debian: mariadb-server slurmdbd)"
TOOLS = ("/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db", "/usr/sbin/slurmdbd")


class AccountingError(Exception):
    """A part of the accounting did not start; the message has its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _own(path: Path, user: str, mode: int) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(mode)


def _run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)  # type: ignore[call-overload]


class Accounting:
    """MariaDB and slurmdbd of one session; ``pids`` names what is running."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db_dir = root / "mariadb"
        self.dbd_dir = root / "slurmdbd"
        self.db_port = free_port()
        self.dbd_port = free_port()
        self.pids: dict[str, int] = {}

    @staticmethod
    def missing() -> list[str]:
        return [tool for tool in TOOLS if not Path(tool).exists()]

    def start_database(self) -> None:
        """A new MariaDB data directory and server, and slurmdbd's database user."""
        self.db_dir.mkdir()
        _own(self.db_dir, "mysql", 0o700)
        data = self.db_dir / "data"
        made = _run(
            "mariadb-install-db",
            "--no-defaults",
            "--user=mysql",
            f"--datadir={data}",
            "--skip-test-db",
            "--auth-root-authentication-method=socket",
        )
        if made.returncode != 0:
            raise AccountingError(f"mariadb-install-db failed:\n{made.stdout}{made.stderr}")
        subprocess.Popen(
            [
                "/usr/sbin/mariadbd",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={data}",
                f"--socket={self.socket}",
                f"--port={self.db_port}",
                "--bind-address=127.0.0.1",
                f"--pid-file={self.db_dir / 'mariadb.pid'}",
                f"--log-error={self.db_dir / 'mariadb.log'}",
                "--skip-log-bin",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pids["mariadbd"] = self._wait_pid(self.db_dir / "mariadb.pid", "mariadbd")
        deadline = time.monotonic() + TIMEOUT
        while not self.socket.exists():
            if time.monotonic() > deadline:
                raise AccountingError(f"MariaDB did not open {self.socket}:\n{self._db_log()}")
            time.sleep(0.05)

    @property
    def socket(self) -> Path:
        return self.db_dir / "mysql.sock"

    def start_slurmdbd(self, node: str) -> None:
        """slurmdbd on the database, with its config beside a slurm.conf path of its own."""
        password = secrets.token_hex(16)
        self._sql(
            f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}'; "
            f"GRANT ALL ON {DATABASE}.* TO 'slurm'@'127.0.0.1';"
        )
        self.dbd_dir.mkdir()
        _own(self.dbd_dir, "slurm", 0o700)
        conf = self.dbd_dir / "slurmdbd.conf"
        conf.write_text(
            "AuthType=auth/munge\n"
            f"DbdAddr=127.0.0.1\nDbdHost={node}\nDbdPort={self.dbd_port}\n"
            "SlurmUser=slurm\n"
            f"PidFile={self.dbd_dir / 'slurmdbd.pid'}\nLogFile={self.dbd_dir / 'slurmdbd.log'}\n"
            "StorageType=accounting_storage/mysql\n"
            f"StorageHost=127.0.0.1\nStoragePort={self.db_port}\n"
            f"StorageUser=slurm\nStoragePass={password}\nStorageLoc={DATABASE}\n"
        )
        _own(conf, "slurm", 0o600)
        # slurmdbd reads slurmdbd.conf from the directory of SLURM_CONF.
        env = {**os.environ, "SLURM_CONF": str(self.dbd_dir / "slurm.conf")}
        started = _run("/usr/sbin/slurmdbd", env=env)
        self.pids["slurmdbd"] = self._wait_pid(
            self.dbd_dir / "slurmdbd.pid", "slurmdbd", started.stderr
        )

    def register_cluster(self) -> None:
        """Add the cluster to the accounting (slurm.conf must name this slurmdbd)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            added = _run("sacctmgr", "-i", "add", "cluster", CLUSTER_NAME)
            if added.returncode == 0 or "already exists" in added.stdout + added.stderr:
                return
            if time.monotonic() > deadline:
                raise AccountingError(
                    f"sacctmgr add cluster failed: {added.stdout}{added.stderr}\n"
                    f"{log_tail(self.dbd_dir / 'slurmdbd.log')}"
                )
            time.sleep(0.2)  # slurmdbd creates its tables before it answers

    def _sql(self, statement: str) -> None:
        done = _run(
            "mariadb", "--no-defaults", "-S", str(self.socket), "-u", "root", "-e", statement
        )
        if done.returncode != 0:
            raise AccountingError(f"MariaDB refused {statement[:40]}...: {done.stderr}")

    def _db_log(self) -> str:
        return log_tail(self.db_dir / "mariadb.log")

    def _wait_pid(self, pid_file: Path, name: str, stderr: str = "") -> int:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            pid = read_pid(pid_file)
            if pid is not None:
                return pid
            time.sleep(0.05)
        log = self._db_log() if name == "mariadbd" else log_tail(self.dbd_dir / "slurmdbd.log")
        raise AccountingError(f"{name} did not start (no PID in {pid_file}):\n{stderr}\n{log}")
