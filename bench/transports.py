"""How the GPUs of a multi-process run talk: NCCL's transport, chosen by
NCCL's own environment switches, defined here and nowhere else.

``default``  whatever NCCL picks on this machine (NVLink/P2P between the GPUs
             of one host), the machine's environment untouched.
``p2p``      P2P only (NVLink or PCIe peer access, at any topology distance),
             shared memory off, and no fallback to the network inside a host
             (``NCCL_NET_DISABLE_INTRA``): NCCL fails rather than quietly
             using something slower.
``shm``      P2P off, so GPUs exchange through host shared memory; no
             fallback to the network either.
``socket``   P2P and shared memory off, the network forced to NCCL's own TCP
             socket transport over the loopback interface (``lo`` is used
             only when named): the stand-in for GPUs in different hosts on
             an Ethernet link. InfiniBand off, in case the host has it.

A run's transport is fixed by the environment its processes start with, as
NCCL reads these variables when a communicator is created: the sweep starts
every worker with :func:`env_for` its runs' transport, never lets runs of two
transports share a worker, and the worker refuses a run whose transport its
environment does not give (:func:`check`). Only runs that talk through NCCL
(``chainermn`` on two GPUs or more) have a transport; every other run
records ``default`` (:func:`applies`).

``bench.busbw`` (run with ``NCCL_DEBUG=INFO``) records the paths NCCL
reports ("via P2P/...", "via SHM/...", "via NET/Socket/...") beside each
transport's bandwidth in env.json, which shows the switches took effect.
"""
import os

from sinelstm.devices import parse_device_set
from sinelstm.names import one_process_per_device

DEFAULT = "default"
TRANSPORTS = {
    DEFAULT: {},
    "p2p": {"NCCL_P2P_LEVEL": "SYS", "NCCL_SHM_DISABLE": "1", "NCCL_NET_DISABLE_INTRA": "1",
            "NCCL_IB_DISABLE": "1"},
    "shm": {"NCCL_P2P_DISABLE": "1", "NCCL_NET_DISABLE_INTRA": "1", "NCCL_IB_DISABLE": "1"},
    "socket": {"NCCL_P2P_DISABLE": "1", "NCCL_SHM_DISABLE": "1", "NCCL_NET": "Socket",
               "NCCL_SOCKET_IFNAME": "lo", "NCCL_IB_DISABLE": "1"},
}
# Every variable some transport sets: a chosen transport clears the others'
# (a user's exported NCCL_P2P_DISABLE=1 must not turn a p2p row into shm).
SWITCHES = sorted({k for env in TRANSPORTS.values() for k in env})


class TransportError(ValueError):
    """A run whose transport this process's environment does not give."""


def applies(devices: str, strategy: str) -> bool:
    """Whether a run of this device set and strategy talks through NCCL."""
    ds = parse_device_set(devices, check=False)
    return one_process_per_device(strategy) and ds.is_gpu and ds.n_devices > 1


def env_for(transport: str, base: dict) -> dict:
    """``base`` (a process environment) set up for ``transport``."""
    if transport not in TRANSPORTS:
        raise TransportError(f"unknown transport {transport!r}; choose from {', '.join(TRANSPORTS)}")
    env = dict(base)
    if transport != DEFAULT:
        for key in SWITCHES:
            env.pop(key, None)
        env.update(TRANSPORTS[transport])
    return env


def check(transport: str, environ=None):
    """Raise :class:`TransportError` unless this process's environment is
    ``transport``'s."""
    environ = os.environ if environ is None else environ
    want = env_for(transport, environ)
    wrong = [k for k in SWITCHES if environ.get(k) != want.get(k)]
    if wrong:
        raise TransportError(f"transport {transport}: this process has {wrong[0]}={environ.get(wrong[0], 'unset')}, "
                             f"the transport needs {want.get(wrong[0], 'unset')}")
