"""ChainerMN pieces of the one-process-per-device strategy.

Launch one rank per device of the set under ``mpiexec`` (``sinebench`` does
it itself; across machines, with ``--mpi-args "--hostfile FILE ..."``).
Every rank draws the same global batch of offsets from the same seed and takes
its contiguous shard; gradients are averaged with an all-reduce (NCCL on
GPUs, MPI on the CPU), so that an update equals one device's on the global
batch. Parameters are broadcast from rank 0 once at the start, explicitly:
ChainerMN's multi-node optimizer would spend its first ``update()`` on that
broadcast and skip the step, which would make update counts differ by one
from the other strategies.
"""
import platform

import sinelstm  # noqa: F401
import chainer

from sinelstm.updaters import Updater, shard


def create_communicator(device_set):
    """``pure_nccl`` on GPUs, ``naive`` (MPI on host memory) on the CPU; the
    rank's GPU is selected first, since NCCL binds to the current device."""
    import chainermn
    from chainermn.communicators.mpi_communicator_base import MpiCommunicatorBase

    if not device_set.is_gpu:
        return chainermn.create_communicator("naive")
    # The spec's k-th GPU is the GPU of each node's k-th rank, so that "0+1"
    # means GPUs 0 and 1 of one node, and also GPU 0 of each of two nodes.
    chainer.get_device(device_set.rank_device(_intra_rank())).use()
    comm = chainermn.create_communicator("pure_nccl")
    # pure_nccl's batched copy kernel uses the 'half' type that CuPy 14 no
    # longer defines, and PureNcclCommunicator.set_config drops the value it
    # is given: set it through the base class.
    MpiCommunicatorBase.set_config(comm, "batched_copy", False)
    return comm


def _intra_rank() -> int:
    from mpi4py import MPI

    return MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()


def check_world(comm, device_set):
    # One rank per device of the set, on one node or several: each rank
    # takes 1/size of the global batch, and the row counts n_devices.
    if comm.size != device_set.n_devices:
        raise RuntimeError(
            f"device set {device_set.spec!r} needs {device_set.n_devices} MPI ranks, got {comm.size}"
        )


def hosts(comm) -> str:
    """The hosts of the job's ranks, in rank order, each once: 'a+b' for a
    job across two nodes (collective). Each rank's name as a one-process run
    records its host (MPI's processor name may drop the domain)."""
    names = comm.mpi_comm.allgather(platform.node())
    return "+".join(dict.fromkeys(names))


class ChainerMNUpdater(Updater):
    """This rank's replica on its own device; all-reduce between backward and
    the optimizer."""

    def __init__(self, comm, model, optimizer, iterator, series, device, **kwargs):
        super().__init__(model, optimizer, iterator, series, device, **kwargs)
        self.comm = comm
        comm.bcast_data(model)

    def shards(self, offsets) -> list:
        return [shard(offsets, self.comm.size)[self.comm.rank]]

    def communicate(self, step):
        # Each rank's loss is the mean over its shard; the mean over ranks of
        # those gradients is the gradient of the global-batch mean.
        with chainer.using_device(self.device):
            self.comm.multi_node_mean_grad(self.model)

    def loss_value(self, losses) -> float:
        # Collective: every rank calls it at the same evaluation points.
        return float(self.comm.allreduce_obj(super().loss_value(losses))) / self.comm.size
