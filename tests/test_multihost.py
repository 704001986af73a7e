"""A real multi-host launch on one machine: two network namespaces are two
hosts, ``node1`` and ``node2``, joined by a veth pair (10.77.0.1 and
10.77.0.2). Open MPI reaches ``node2`` through its rsh launcher with an agent
that does what ssh does: it runs the command on the named host (``ip netns
exec`` into its namespace, with a hostname of its own) in a fresh login
environment (``env -i``), so nothing reaches the remote ranks that ssh would
not carry. The hostfile, the device set and the ``--mpi-args`` are the ones
README's multi-node section gives for two one-GPU nodes, with ``cpu+cpu`` for
``0+1``; the test logs into ``node1`` through the same agent and runs
``sinebench verify`` and one sweep row there.

Evidence that the ranks were on two hosts, not one: the row's ``host`` and
verify's line name both hosts (each rank reports its own hostname), and the
bytes that crossed the veth pair cover at least one gradient per update (two
ranks on one host would talk through shared memory and leave the link idle).

Needs root (namespaces), iproute2, util-linux's ``unshare`` and Open MPI with
mpi4py; skips, saying which, without them. Everything it creates has a name
unique to the run and is removed afterwards, also after a failure.
"""
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import PROJECT_ROOT

HOSTS = {"node1": "10.77.0.1", "node2": "10.77.0.2"}  # the hostfile's names and their addresses
LINK = "eth0"  # each host's end of the veth pair, inside its namespace
# README's options for ranks on several hosts, after the hostfile.
NETWORK_ARGS = f"--mca btl_tcp_if_include {LINK} --mca oob_tcp_if_include {LINK} -x NCCL_SOCKET_IFNAME={LINK}"

AGENT = """#!/bin/sh
# Open MPI's rsh agent, in place of ssh: "agent HOST COMMAND..." runs
# COMMAND on HOST, i.e. in HOST's network namespace under HOST's hostname,
# in a login environment as sshd would give it.
host=$1; shift
case $host in
{cases}
  *) echo "agent: no host $host" >&2; exit 255 ;;
esac
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="$HOME" \\
    ip netns exec "$ns" unshare --uts sh -c 'echo "$0" > /proc/sys/kernel/hostname && exec sh -c "$1"' "$host" "$*"
"""


def sh(*cmd, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=30)


def open_mpi_major(mpiexec: str) -> int | None:
    """Open MPI's major version, or None for another MPI: 'mpiexec (Open
    MPI) 5.0.11', 'mpiexec (OpenRTE) 4.1.4'."""
    out = sh(mpiexec, "--version", check=False).stdout
    found = re.search(r"\((?:Open MPI|OpenRTE)\) (\d+)\.", out)
    return int(found.group(1)) if found else None


def agent_option(major: int, agent: Path) -> str:
    # Open MPI 5 launches through PRRTE, whose name for it is plm_ssh_agent
    # (its mpiexec also maps 4.x's --mca plm_rsh_agent onto it).
    return f"--prtemca plm_ssh_agent {agent}" if major >= 5 else f"--mca plm_rsh_agent {agent}"


def mpiexec_or_skip() -> str:
    from bench.launch import MpiMissing, find_mpiexec

    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces stand in for the hosts")
    missing = [tool for tool in ("ip", "unshare") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {missing[0]} (iproute2, util-linux)")
    try:
        return find_mpiexec()
    except MpiMissing as exc:
        pytest.skip(str(exc))


class Cluster:
    """Two namespaces as hosts; ``login`` runs a command on ``node1``."""

    def __init__(self, folder: Path):
        token = secrets.token_hex(3)  # parallel and aborted runs never share a name
        self.namespaces = {host: f"sbmh{token}{i}" for i, host in enumerate(HOSTS, 1)}
        self.links = {host: f"sb{token}v{i}" for i, host in enumerate(HOSTS, 1)}  # until moved: unique here
        self.folder = folder
        self.agent = folder / "agent"
        self.hostfile = folder / "hosts"
        self.created = []  # namespaces, for the clean-up

    def create(self):
        for host, ns in self.namespaces.items():
            made = sh("ip", "netns", "add", ns, check=False)
            if made.returncode:
                pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
            self.created.append(ns)
            # ip netns exec mounts /etc/netns/NS/hosts over /etc/hosts: each host resolves the others.
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True)
            (etc / "hosts").write_text("127.0.0.1 localhost\n" + "".join(f"{a} {h}\n" for h, a in HOSTS.items()))
        (one, two) = HOSTS
        sh("ip", "link", "add", self.links[one], "type", "veth", "peer", "name", self.links[two])
        for host, ns in self.namespaces.items():
            sh("ip", "link", "set", self.links[host], "netns", ns, "name", LINK)
            sh("ip", "-n", ns, "addr", "add", f"{HOSTS[host]}/24", "dev", LINK)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", LINK, "up")
        cases = "\n".join(f"  {host}) ns={ns} ;;" for host, ns in self.namespaces.items())
        self.agent.write_text(AGENT.format(cases=cases))
        self.agent.chmod(0o755)
        # As a user writes it for two one-GPU nodes: one slot (rank) each.
        self.hostfile.write_text("".join(f"{host} slots=1\n" for host in HOSTS))

    def remove(self):
        sh("ip", "link", "del", self.links["node1"], check=False)  # the pair, if creation stopped before the move
        for ns in self.created:
            # Whatever the test left running in the namespace, then the namespace and its end of the link.
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)

    def login(self, *cmd, timeout=90) -> subprocess.CompletedProcess:
        """``cmd`` on node1 in the project's folder, as ``ssh node1 'cd ... && cmd'``."""
        line = f"cd {shlex.quote(str(PROJECT_ROOT))} && {shlex.join(map(str, cmd))}"
        return subprocess.run([str(self.agent), "node1", line], capture_output=True, text=True, timeout=timeout)

    def rx_bytes(self, host: str) -> int:
        """Bytes ``host`` has received over the link."""
        out = sh("ip", "-n", self.namespaces[host], "-j", "-s", "link", "show", "dev", LINK).stdout
        return int(json.loads(out)[0]["stats64"]["rx"]["bytes"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    mpiexec = mpiexec_or_skip()
    major = open_mpi_major(mpiexec)
    if major is None or major < 4:
        pytest.skip(f"the launch options are Open MPI's (4.x or 5.x); {mpiexec} is another MPI")
    c = Cluster(tmp_path_factory.mktemp("multihost"))
    try:
        c.create()
        c.mpi_args = f"--hostfile {c.hostfile} {NETWORK_ARGS} {agent_option(major, c.agent)}"
        yield c
    finally:
        c.remove()


def gradient_bytes(n_units: int) -> int:
    from sinelstm.model import SineLSTM

    return 4 * sum(p.size for p in SineLSTM(n_units).params())


@pytest.mark.multihost
@pytest.mark.mpi
def test_verify_across_two_hosts(cluster):
    before = cluster.rx_bytes("node2")
    proc = cluster.login(sys.executable, "-m", "bench.cli", "verify", "--devices", "cpu+cpu", "--strategy",
                         "chainermn", "--updates", "20", "--mpi-args", cluster.mpi_args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "hosts: node1+node2" in proc.stdout, proc.stdout
    # verify trains the article's n_units 5; every SGD update all-reduces its gradient over the link.
    assert cluster.rx_bytes("node2") - before >= 20 * gradient_bytes(5)


@pytest.mark.multihost
@pytest.mark.mpi
def test_one_sweep_row_across_two_hosts(cluster, tmp_path):
    before = cluster.rx_bytes("node2")
    proc = cluster.login(sys.executable, "-m", "bench.cli", "sweep", "--devices", "cpu+cpu", "--strategy",
                         "chainermn", "--batchsize", "10", "--units", "5", "--recipe", "article", "--full-budget",
                         "--updates", "60", "--max-seconds", "2", "--warmup", "2", "--eval-every", "20",
                         "--repeats", "1", "--retries", "0", "--no-progress", "--no-report", "--out", tmp_path,
                         "--mpi-args", cluster.mpi_args, "--host-gate", "off")  # the launch is tested, not the gate
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert row["status"] == "ok", row["message"]
    assert (row["strategy"], row["n_devices"], row["updates"]) == ("chainermn", 2, 60)
    assert row["host"] == "node1+node2"  # each rank's own hostname, in rank order
    assert cluster.rx_bytes("node2") - before >= 60 * gradient_bytes(5)


# -- the pieces, without namespaces ------------------------------------------------
def test_each_rank_takes_the_device_of_its_place_on_its_node():
    from sinelstm.devices import DeviceSpecError, parse_device_set

    two = parse_device_set("0+1", check=False)
    assert two.rank_device(0, n_gpus=1) == "@cupy:0"  # two one-GPU nodes: GPU 0 of each
    assert two.rank_device(1, n_gpus=2) == "@cupy:1"  # one two-GPU node
    with pytest.raises(DeviceSpecError, match="gives rank 1 of host .* GPU 1, but that host has 1 GPU"):
        two.rank_device(1, n_gpus=1)  # two ranks on a one-GPU node
    with pytest.raises(DeviceSpecError, match="has 2 devices, but 3 of its ranks run on host"):
        two.rank_device(2, n_gpus=4)
    assert parse_device_set("cpu+cpu").rank_device(1, n_gpus=0) == "@numpy"


def test_a_job_needs_one_rank_per_device_also_across_nodes():
    from types import SimpleNamespace

    from sinelstm.devices import parse_device_set
    from sinelstm.mn import check_world

    cpus = parse_device_set("cpu+cpu")
    check_world(SimpleNamespace(size=2, inter_size=2), cpus)
    with pytest.raises(RuntimeError, match="needs 2 MPI ranks, got 3"):
        check_world(SimpleNamespace(size=3, inter_size=2), cpus)  # each rank would take a third of the batch


def test_mpi_args_go_between_the_rank_count_and_the_program(monkeypatch):
    from bench.launch import MPI_ARGS_ENV, python_command

    monkeypatch.setenv(MPI_ARGS_ENV, "--hostfile 'my hosts' --mca btl_tcp_if_include eth0")
    cmd = python_command("bench.worker", "specs.json", "out", ranks=2)
    assert cmd[1:9] == ["-n", "2", "--hostfile", "my hosts", "--mca", "btl_tcp_if_include", "eth0", sys.executable]
    assert python_command("bench.worker", ranks=0)[0] == sys.executable  # no MPI, no MPI options


def test_mpi_args_that_set_the_rank_count_name_no_hostfile_or_do_not_parse_are_refused(tmp_path):
    from tests.helpers import sinebench

    for bad, said in (("-np 4", "sets the rank count (-np)"), ("--hostfile 'hosts", "No closing quotation"),
                      (f"--hostfile={tmp_path}/none", f"--hostfile '{tmp_path}/none' is not a file")):
        proc = sinebench("verify", "--devices", "cpu+cpu", "--strategy", "chainermn", "--mpi-args", bad)
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.mpi
def test_with_a_hostfile_this_hosts_gpus_do_not_bound_a_chainermn_set(tmp_path):
    from sinelstm.devices import gpu_count
    from tests.helpers import sinebench

    if gpu_count() >= 2:
        pytest.skip("this host has GPUs 0 and 1 itself")
    hosts = tmp_path / "hosts"
    hosts.write_text("node1 slots=1\nnode2 slots=1\n")
    grid = ["--devices", "0+1", "--batchsize", "10", "--units", "5", "--repeats", "1", "--dry-run"]
    proc = sinebench("sweep", *grid, "--strategy", "chainermn", "--mpi-args", f"--hostfile {hosts}")
    assert proc.returncode == 0 and "chainermn" in proc.stdout, proc.stderr  # GPU 0 of two nodes: their ranks check
    proc = sinebench("sweep", *grid, "--strategy", "chainermn,single-process", "--mpi-args", f"--hostfile {hosts}")
    assert proc.returncode == 2 and "names GPU" in proc.stderr, proc.stderr  # single-process runs here
    proc = sinebench("sweep", *grid, "--strategy", "chainermn")
    assert proc.returncode == 2 and "names GPU" in proc.stderr, proc.stderr  # one host: this one
