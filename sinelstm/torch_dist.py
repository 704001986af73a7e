"""``torch-ddp``: PyTorch's DistributedDataParallel, one process per device.

Launched exactly as ChainerMN's ranks are (``sinebench`` starts ``mpiexec``
with one rank per device of the set; rows record the strategy
:data:`sinelstm.names.TORCH_DDP_STRATEGY`). ``torch.distributed`` is set up
from that MPI job: rank, size and local rank from Open MPI's
``OMPI_COMM_WORLD_*`` (mpi4py's world where another MPI runs it), and rank 0
picks the rendezvous address and a free port and broadcasts them with mpi4py.
One process group serves every run of the worker: gloo for CPU tensors, NCCL
for CUDA ones. The k-th id of a device set is the GPU of each node's k-th
rank, as for ChainerMN.

Each rank draws the same global batch from the same seed and trains on its
contiguous shard; DDP averages the gradients over ranks, so an update equals
one device's on the global batch (what ``verify`` checks).
"""
import os
import platform
import socket

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from sinelstm.names import TORCH_DDP_STRATEGY
from sinelstm.strategy import MpiRanks
from sinelstm.torch_ref import TorchUpdater
from sinelstm.updaters import Step


def _mpi():
    from mpi4py import MPI

    return MPI


def world() -> tuple:
    """(rank, size, local rank) of this process in its MPI job."""
    env = os.environ
    if "OMPI_COMM_WORLD_RANK" in env:
        return (int(env["OMPI_COMM_WORLD_RANK"]), int(env["OMPI_COMM_WORLD_SIZE"]),
                int(env["OMPI_COMM_WORLD_LOCAL_RANK"]))
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    return comm.Get_rank(), comm.Get_size(), comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def init_process_group():
    """The default process group of this MPI job, once per process."""
    if dist.is_initialized():
        return
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    rank, size, _ = world()
    one_node = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size() == size  # collective: every rank asks
    here = "127.0.0.1" if one_node else socket.gethostname()
    addr, port = comm.bcast((here, _free_port()) if rank == 0 else None, root=0)
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://{addr}:{port}", rank=rank, world_size=size)


class TorchDDPUpdater(TorchUpdater):
    """This rank's replica, wrapped in DDP.

    The timed update lets DDP all-reduce inside the backward pass, overlapped
    with it, as a PyTorch user would. ``phases`` (the per-phase profile)
    cannot time that apart, so there backward runs under ``no_sync`` and the
    exchange is one all-reduce of the flattened gradients: what DDP's single
    bucket carries at these model sizes."""

    def __init__(self, cfg, chainer_name: str, rank: int, ranks: int):
        super().__init__(cfg, chainer_name, rank, ranks)
        dev = self.device.torch
        self.module = DistributedDataParallel(self.net, device_ids=[dev.index] if dev.type == "cuda" else None)

    def update(self):
        step = Step()
        for phase in (self.data, self.forward, self.backward, self.optimize):  # DDP exchanges inside backward
            phase(step)
        return step.losses

    def phases(self):
        """For the profile only: the exchange taken out of backward."""
        return [("data", self.data), ("forward", self.forward), ("backward", self.backward_unsynced),
                ("communication", self.all_reduce), ("optimizer", self.optimize)]

    def backward_unsynced(self, step):
        with self.module.no_sync():
            self.backward(step)

    def all_reduce(self, step):
        grads = [p.grad for p in self.params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.ranks
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def loss_value(self, losses) -> float:
        # Collective: every rank calls it at the same evaluation points.
        # Each rank's loss is its shard's mean; their mean is the global batch's.
        local = super().loss_value(losses)
        return float(_mpi().COMM_WORLD.allreduce(local)) / self.ranks


class TorchDDP(MpiRanks):
    """This process is one rank of an MPI job with a rank per device."""

    name = TORCH_DDP_STRATEGY

    def __init__(self, device_set):
        rank, size, local = world()
        if size != device_set.n_devices:
            raise RuntimeError(f"device set {device_set.spec!r} needs {device_set.n_devices} MPI ranks, got {size}")
        init_process_group()
        self.device_set = device_set
        self.rank, self.size = rank, size
        self.mpi = _mpi().COMM_WORLD
        self.chainer_name = device_set.names[local]
        self.reports = rank == 0
        # The ranks' hosts, each once ('a+b' across two nodes), as sinelstm.mn.hosts says them.
        self.hosts = "+".join(dict.fromkeys(_mpi().COMM_WORLD.allgather(platform.node())))

    def make_updater(self, cfg, scale_losses: bool = True):
        return TorchDDPUpdater(cfg, self.chainer_name, self.rank, self.size)

