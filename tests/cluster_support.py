"""A real single-node Slurm cluster and an OpenSSH server on the loopback, for the SSH tests.

tests/conftest.py loads this module as a plugin. scripts/test.sh installs what it needs
(Debian's openssh-server, munge, slurm-wlm, slurmctld, slurmd, slurm-client, slurmdbd,
mariadb-server); the fixture
starts the daemons and needs root. It never skips: a missing package or a daemon that does
not come up fails the tests that use it, with that daemon's log.

Fixtures
--------
``cluster -> Cluster`` (session)
    Creates the cluster accounts ``hpcuser1`` and ``hpcuser2`` (their authorized_keys
    emptied), starts munged, slurmctld and slurmd (config at /etc/slurm/slurm.conf, so
    that SSH sessions find it; one node declaring 16 CPUs so several one-CPU jobs run at
    once; ``MinJobAge=300``; accounting in slurmdbd on a throwaway MariaDB server, see
    tests/cluster/accounting.py, so ``sacct`` answers users with elapsed time, CPU time
    and max RSS), waits for the node to be idle, and
    starts ``sshd`` on 127.0.0.1:2222 with its own ed25519 host key. Installs the
    stand-ins of tests/cluster/ (``enqueue_compss``, ``module``) into /usr/local/bin:
    stand-ins, because the real PyCOMPSs runtime and Lmod are not installable here
    (tests/cluster/README.md). At teardown cancels the test users' jobs and stops every
    daemon it started by PID.
``cluster_jobs_cleanup -> Cluster`` (function)
    The same cluster; cancels the test users' jobs after the test.

``Cluster``: ``.host``, ``.port``, ``.known_hosts`` (``[127.0.0.1]:2222 ssh-ed25519 ...``),
``.users``, ``.node`` (the Slurm node), ``.slurm_conf``, ``.sshd_log``,
``.authorize(user, public_key_line)``, ``.clear_authorized(user)``, ``.stop_sshd()`` /
``.start_sshd()`` (the same host key; stopping also drops the open connections),
``.squeue(user)`` (``id state name`` lines), ``.scontrol(job_id)``, ``.job_state(job_id)``,
``.wait_job_state(job_id, states)``, ``.run_as(user, command)``, ``.cancel_jobs()``.

Only one test session at a time can own the cluster (fixed port, /etc/slurm/slurm.conf):
a session waits for a lock, and kills the daemons a crashed earlier session left behind
(their PIDs are recorded under /run/hpcwaas-test-cluster).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from string import Template
from typing import IO

import pytest

from tests.cluster.accounting import Accounting, AccountingError
from tests.cluster.processes import comm, descendants, log_tail, read_pid, stop_pid

CONFIGS = Path(__file__).resolve().parent / "cluster"
STANDINS = ("enqueue_compss", "module")  # into /usr/local/bin
STANDIN_MARKER = "hpcwaas test cluster stand-in"
CONF_MARKER = "# Written by hpcwaas tests/cluster_support.py"  # first line of slurm.conf.in
SLURM_CONF = Path("/etc/slurm/slurm.conf")
RUN_DIR = Path("/run/hpcwaas-test-cluster")
PIDS_FILE = RUN_DIR / "pids"
LOCK_WAIT = 900.0
START_TIMEOUT = 30.0
USERS = ["hpcuser1", "hpcuser2"]
DAEMONS = {"munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd", "sshd"}
INSTALL_HINT = (
    "scripts/test.sh installs it: apt-get install --no-install-recommends "
    "openssh-server munge slurm-wlm slurmctld slurmd slurm-client slurmdbd mariadb-server"
)


def _run(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited with {result.returncode}:\n{result.stderr}")
    return result


class Cluster:
    """The loopback cluster: accounts, Slurm daemons, an sshd on 127.0.0.1:2222."""

    host = "127.0.0.1"
    port = 2222
    users = USERS
    slurm_conf = SLURM_CONF

    def __init__(self, root: Path) -> None:
        self.root = root
        self.node = socket.gethostname().split(".")[0]
        self.sshd_config = root / "sshd_config"
        self.sshd_log = root / "sshd.log"
        self.host_key = root / "ssh_host_ed25519_key"
        self.known_hosts = ""
        self._pids: dict[str, int] = {}
        self.accounting = Accounting(root)

    # ------------------------------------------------------------------ helpers for tests

    def authorize(self, user: str, public_key_line: str) -> None:
        """Append a public key line to ``user``'s ~/.ssh/authorized_keys."""
        keys = self._authorized_keys(user)
        with keys.open("a") as out:
            out.write(public_key_line.strip() + "\n")
        self._own(user, keys, 0o600)

    def clear_authorized(self, user: str) -> None:
        """Empty ``user``'s ~/.ssh/authorized_keys."""
        keys = self._authorized_keys(user)
        keys.write_text("")
        self._own(user, keys, 0o600)

    def run_as(
        self, user: str, command: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command line as ``user`` (runuser, login shell, in the user's home)."""
        return subprocess.run(
            ["runuser", "-u", user, "--", "bash", "-lc", command],
            capture_output=True,
            text=True,
            cwd=pwd.getpwnam(user).pw_dir,
            timeout=timeout,
        )

    def squeue(self, user: str) -> str:
        """``squeue -h -u user -o '%i %T %j'``: one ``id state name`` line per job."""
        return _run("squeue", "-h", "-u", user, "-o", "%i %T %j").stdout

    def scontrol(self, job_id: str | int) -> str:
        """``scontrol show job -o N`` (empty when Slurm no longer knows the job)."""
        return _run("scontrol", "show", "job", "-o", str(job_id), check=False).stdout

    def job_state(self, job_id: str | int) -> str | None:
        """The job's state from scontrol (``COMPLETED``, ``RUNNING``...), None if unknown."""
        match = re.search(r"\bJobState=(\S+)", self.scontrol(job_id))
        return match.group(1) if match else None

    def wait_job_state(self, job_id: str | int, states: set[str], timeout: float = 60) -> str:
        """Poll ``job_state`` until it is one of ``states``; return it."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.job_state(job_id)
            if state in states:
                return state
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} still {state} after {timeout} s")

    def cancel_jobs(self, timeout: float = 30) -> None:
        """scancel every job of the test users and wait until none is left in squeue."""
        for user in self.users:
            _run("scancel", "-u", user, check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queue = _run("squeue", "-h", "-o", "%i", "-u", ",".join(self.users), check=False)
            if queue.returncode != 0 or not queue.stdout.strip():
                return
            time.sleep(0.2)

    def stop_sshd(self) -> None:
        """Stop sshd and drop every connection it serves (for outage tests)."""
        pid = self._pids.pop("sshd", None)
        if pid is None:
            return
        sessions = [p for p in descendants(pid) if comm(p) == "sshd"]
        stop_pid(pid, "sshd")
        for child in sessions:
            if comm(child) == "sshd":
                os.kill(child, signal.SIGTERM)
        self._record_pids()

    def start_sshd(self) -> None:
        """Start sshd on 127.0.0.1:2222 with the cluster's host key; wait until it listens."""
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        pid_file = self.root / "sshd.pid"
        pid_file.unlink(missing_ok=True)
        result = _run(
            "/usr/sbin/sshd", "-f", str(self.sshd_config), "-E", str(self.sshd_log), check=False
        )
        pid = self._wait_pid_file(pid_file, "sshd", self.sshd_log, result.stderr)
        self._pids["sshd"] = pid
        self._record_pids()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"sshd does not answer on port {self.port}:\n{log_tail(self.sshd_log)}")

    # ---------------------------------------------------------------------------- startup

    def start(self) -> None:
        missing = [
            tool
            for tool in (
                "/usr/sbin/sshd",
                "/usr/sbin/munged",
                "/usr/sbin/slurmctld",
                "/usr/sbin/slurmd",
            )
            if not Path(tool).exists()
        ] + Accounting.missing()
        missing += [tool for tool in ("sbatch", "sinfo", "runuser") if shutil.which(tool) is None]
        if missing:
            pytest.fail(f"the test cluster needs {', '.join(missing)}: {INSTALL_HINT}")
        if os.geteuid() != 0:
            pytest.fail("the test cluster starts Slurm and sshd: run the tests as root")
        self._kill_leftovers()
        for user in self.users:
            self._create_user(user)
        self._install_standins()
        self._start_munge()
        self._start_slurm()
        self._write_sshd_config()
        self.start_sshd()

    def stop(self) -> None:
        """Cancel the test users' jobs, then stop every daemon we started (each step tried)."""
        try:
            if "slurmctld" in self._pids:
                self.cancel_jobs()  # slurmd's end does not end the jobs' slurmstepd
        finally:
            try:
                self.stop_sshd()
            finally:
                for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):
                    pid = self._pids.pop(name, None)
                    if pid is not None:
                        stop_pid(pid, name)
                self._record_pids()
                shutil.rmtree(self.root, ignore_errors=True)

    def _record_pids(self) -> None:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        PIDS_FILE.write_text("".join(f"{name} {pid}\n" for name, pid in self._pids.items()))

    def _kill_leftovers(self) -> None:
        """Stop the daemons a session that died without its teardown left running."""
        try:
            lines = PIDS_FILE.read_text().splitlines()
        except OSError:
            return
        for line in lines:
            name, _, pid = line.partition(" ")
            if name in DAEMONS and pid.isdigit():
                if name == "sshd":
                    for child in descendants(int(pid)):
                        if comm(child) == "sshd":
                            os.kill(child, signal.SIGKILL)
                stop_pid(int(pid), name)
        PIDS_FILE.unlink(missing_ok=True)

    def _authorized_keys(self, user: str) -> Path:
        home = Path(pwd.getpwnam(user).pw_dir)
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        self._own(user, ssh_dir, 0o700)
        keys = ssh_dir / "authorized_keys"
        keys.touch(mode=0o600, exist_ok=True)
        return keys

    @staticmethod
    def _own(user: str, path: Path, mode: int) -> None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(mode)

    def _create_user(self, user: str) -> None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            _run("useradd", "-m", "-U", "-s", "/bin/bash", user)
        # useradd leaves the account locked, which sshd refuses without PAM.
        _run("usermod", "-p", "*", user)
        self.clear_authorized(user)

    def _install_standins(self) -> None:
        for name in STANDINS:
            source, target = CONFIGS / name, Path("/usr/local/bin") / name
            if target.exists() and STANDIN_MARKER not in target.read_text(errors="replace"):
                pytest.fail(
                    f"{target} exists and is not the test cluster's stand-in: not replacing it"
                )
            shutil.copyfile(source, target)
            target.chmod(0o755)

    def _start_munge(self) -> None:
        munge = pwd.getpwnam("munge")
        for path, mode in (
            (Path("/run/munge"), 0o755),
            (Path("/var/lib/munge"), 0o700),
            (Path("/var/log/munge"), 0o700),
        ):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, munge.pw_uid, munge.pw_gid)
            path.chmod(mode)
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            _run("mungekey", "-c", "-f", "-k", str(key))
            os.chown(key, munge.pw_uid, munge.pw_gid)
            key.chmod(0o400)
        pid_file = Path("/run/munge/munged.pid")
        running = read_pid(pid_file)
        if running is not None and comm(running) == "munged":
            return  # a munged we did not start (the system's): use it, leave it running
        result = _run("runuser", "-u", "munge", "--", "/usr/sbin/munged", check=False)
        self._pids["munged"] = self._wait_pid_file(
            pid_file, "munged", Path("/var/log/munge/munged.log"), result.stderr
        )
        self._record_pids()

    def _slurm_config(self) -> str:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        template = Template((CONFIGS / "slurm.conf.in").read_text())
        return template.substitute(
            node=self.node,
            root=self.root,
            memory=min(memory, 16384),
            dbd_port=self.accounting.dbd_port,
        )

    def _start_slurm(self) -> None:
        if SLURM_CONF.exists() and CONF_MARKER not in SLURM_CONF.read_text(errors="replace"):
            pytest.fail(f"{SLURM_CONF} exists and was not written by the tests: not replacing it")
        slurm = pwd.getpwnam("slurm")
        for name in ("slurmctld-state", "log"):
            (self.root / name).mkdir()
            os.chown(self.root / name, slurm.pw_uid, slurm.pw_gid)
        (self.root / "slurmd-spool").mkdir()
        try:
            self.accounting.start_database()
            self._pids.update(self.accounting.pids)
            self._record_pids()
            self.accounting.start_slurmdbd(self.node)
            self._pids.update(self.accounting.pids)
            self._record_pids()
            SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
            SLURM_CONF.write_text(self._slurm_config())
            SLURM_CONF.chmod(0o644)
            self.accounting.register_cluster()
        except AccountingError as exc:
            pytest.fail(f"the test cluster's accounting did not start: {exc}")
        for name, args in (("slurmctld", ["-i"]), ("slurmd", ["-N", self.node])):
            log = self.root / "log" / f"{name}.log"
            result = _run(f"/usr/sbin/{name}", *args, check=False)
            self._pids[name] = self._wait_pid_file(
                self.root / f"{name}.pid", name, log, result.stderr
            )
            self._record_pids()
        deadline = time.monotonic() + START_TIMEOUT
        state = ""
        while time.monotonic() < deadline:
            state = _run("sinfo", "-h", "-n", self.node, "-o", "%T", check=False).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.1)
        logs = "\n".join(
            f"--- {name}.log\n{log_tail(self.root / 'log' / f'{name}.log')}"
            for name in ("slurmctld", "slurmd")
        )
        pytest.fail(f"the Slurm node is {state!r}, not idle, after {START_TIMEOUT} s:\n{logs}")

    def _write_sshd_config(self) -> None:
        self.host_key.unlink(missing_ok=True)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(self.host_key))
        public = self.host_key.with_suffix(".pub").read_text().split()
        self.known_hosts = f"[{self.host}]:{self.port} {public[0]} {public[1]}"
        template = Template((CONFIGS / "sshd_config.in").read_text())
        self.sshd_config.write_text(
            template.substitute(
                port=self.port, host=self.host, host_key=self.host_key, root=self.root
            )
        )

    def _wait_pid_file(self, pid_file: Path, name: str, log: Path, stderr: str) -> int:
        """The PID a daemonizing ``name`` wrote to ``pid_file``; fail with its log if none."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            pid = read_pid(pid_file)
            if pid is not None and comm(pid) == name:
                return pid
            time.sleep(0.05)
        pytest.fail(f"{name} did not start (no live PID in {pid_file}):\n{stderr}\n{log_tail(log)}")


def _lock() -> IO[str]:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    handle = (RUN_DIR / "lock").open("w")
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                pytest.fail(f"another test session has held the test cluster for {LOCK_WAIT} s")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The loopback Slurm cluster and sshd, started once per session (see the module doc)."""
    lock = _lock()
    root = Path(tempfile.mkdtemp(prefix="hpcwaas-cluster-"))
    root.chmod(0o755)  # slurm, mysql and the test users must traverse it
    instance = Cluster(root)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()
        lock.close()


@pytest.fixture
def cluster_jobs_cleanup(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster; every job of the test users is cancelled after the test."""
    yield cluster
    cluster.cancel_jobs()
