"""The loopback test cluster itself: Slurm jobs, sshd logins, the PyCOMPSs stand-ins."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.cluster_support import Cluster

from hpcwaas.secrets.sshkeys import generate_rsa

SshRunner = Callable[[str], subprocess.CompletedProcess[str]]


@pytest.fixture
def ssh_as_hpcuser1(cluster_jobs_cleanup: Cluster, tmp_path: Path) -> SshRunner:
    """Runs a command line as hpcuser1 through OpenSSH's client with a freshly authorized key."""
    cluster = cluster_jobs_cleanup
    pair = generate_rsa()
    key = tmp_path / "id_rsa"
    key.write_text(pair.private_pem)
    key.chmod(0o600)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(cluster.known_hosts + "\n")
    cluster.authorize("hpcuser1", pair.public_line)

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "ssh",
                "-F", "/dev/null",
                "-i", str(key),
                "-p", str(cluster.port),
                "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={known_hosts}",
                f"hpcuser1@{cluster.host}",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip

    return run


def submitted_job_id(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("Submitted batch job ")]
    assert len(lines) == 1, output
    return lines[0].split()[-1]


def test_sbatch_as_a_cluster_user_runs_the_job_to_completion(
    cluster_jobs_cleanup: Cluster,
) -> None:
    cluster = cluster_jobs_cleanup
    result = cluster.run_as(
        "hpcuser1",
        "sbatch --parsable --wrap 'id -un > infra-sbatch.txt; hostname >> infra-sbatch.txt'",
    )
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert cluster.wait_job_state(job_id, {"COMPLETED", "FAILED", "CANCELLED"}) == "COMPLETED"
    assert "UserId=hpcuser1(" in cluster.scontrol(job_id)
    output = cluster.run_as("hpcuser1", "cat infra-sbatch.txt").stdout.split()
    assert output == ["hpcuser1", cluster.node]


def test_sacct_answers_users_with_the_accounting_slurmdbd_keeps(
    cluster_jobs_cleanup: Cluster,
) -> None:
    cluster = cluster_jobs_cleanup
    # about 64 MiB held and one second of CPU, then exit 3
    work = "python3 -c 'import time; b = bytearray(64 << 20); t = time.time()\n"
    work += "while time.time() - t < 1.5: b[0] = 1' ; exit 3"
    submitted = cluster.run_as("hpcuser2", f"sbatch --parsable --wrap {shlex.quote(work)}")
    job_id = submitted.stdout.strip()
    assert cluster.wait_job_state(job_id, {"COMPLETED", "FAILED"}) == "FAILED"
    fields = "jobid,state,exitcode,elapsedraw,totalcpu,maxrss"
    deadline = time.monotonic() + 30
    lines: list[str] = []
    while time.monotonic() < deadline:  # slurmdbd records the end a moment later
        result = cluster.run_as("hpcuser2", f"sacct -j {job_id} -n -P --units=K -o {fields}")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        if any(line.startswith(f"{job_id}.batch|") and line.split("|")[5] for line in lines):
            break
        time.sleep(0.5)
    allocation = next(line.split("|") for line in lines if line.startswith(f"{job_id}|"))
    assert allocation[1:3] == ["FAILED", "3:0"]
    assert int(allocation[3]) >= 1
    batch = next(line.split("|") for line in lines if line.startswith(f"{job_id}.batch|"))
    assert float(batch[5].rstrip("K")) >= 60 * 1024  # KiB: the 64 MiB were measured


def test_several_one_cpu_jobs_run_at_once(cluster_jobs_cleanup: Cluster) -> None:
    cluster = cluster_jobs_cleanup
    ids = []
    for _ in range(4):
        result = cluster.run_as("hpcuser2", "sbatch --parsable --wrap 'sleep 60'")
        assert result.returncode == 0, result.stderr
        ids.append(result.stdout.strip())
    for job_id in ids:
        cluster.wait_job_state(job_id, {"RUNNING"}, timeout=30)
    queue = cluster.squeue("hpcuser2")
    assert sorted(line.split()[0] for line in queue.splitlines()) == sorted(ids)


def test_ssh_with_an_authorized_key_runs_commands_as_the_user(
    ssh_as_hpcuser1: SshRunner, cluster: Cluster
) -> None:
    result = ssh_as_hpcuser1("id -un")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hpcuser1"
    assert "Accepted publickey for hpcuser1" in cluster.sshd_log.read_text()


def test_ssh_refuses_a_key_once_authorized_keys_is_cleared(
    ssh_as_hpcuser1: SshRunner, cluster: Cluster
) -> None:
    cluster.clear_authorized("hpcuser1")
    result = ssh_as_hpcuser1("id -un")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_sbatch_over_ssh_submits_a_job(ssh_as_hpcuser1: SshRunner, cluster: Cluster) -> None:
    result = ssh_as_hpcuser1("sbatch --wrap 'echo over ssh'")
    assert result.returncode == 0, result.stderr
    job_id = submitted_job_id(result.stdout)
    assert cluster.wait_job_state(job_id, {"COMPLETED", "FAILED"}) == "COMPLETED"
    output = cluster.run_as("hpcuser1", f"cat slurm-{job_id}.out")
    assert output.stdout == "over ssh\n"


def test_enqueue_compss_stand_in_submits_the_application(
    ssh_as_hpcuser1: SshRunner, cluster: Cluster
) -> None:
    app = "import sys\nprint('app args', sys.argv[1:])\n"
    written = cluster.run_as(
        "hpcuser1", f"mkdir -p compss && printf %s {shlex.quote(app)} > compss/app.py"
    )
    assert written.returncode == 0, written.stderr
    result = ssh_as_hpcuser1(
        "module purge && module load COMPSs/3.3 && cd compss && enqueue_compss"
        " --num_nodes=1 --qos=debug --exec_time=5 --python_interpreter=python3"
        " --container_image=/img.sif --project_name=proj --job_name=infra-compss"
        " --log_level=off --lang=python --summary app.py 'two words' 3"
    )
    assert result.returncode == 0, result.stderr
    job_id = submitted_job_id(result.stdout)
    assert "JobName=infra-compss " in cluster.scontrol(job_id)
    assert cluster.wait_job_state(job_id, {"COMPLETED", "FAILED"}) == "COMPLETED"
    output = cluster.run_as("hpcuser1", f"cat compss/compss-{job_id}.out")
    assert output.stdout == "app args ['two words', '3']\n"


def test_module_stand_in_prints_nothing(ssh_as_hpcuser1: SshRunner) -> None:
    result = ssh_as_hpcuser1("module load COMPSs/3.3 Python/3.11; module purge; echo done")
    assert (result.returncode, result.stdout, result.stderr) == (0, "done\n", "")
