"""One process per device with ChainerMN: the multi-process strategy.

Launch one rank per device of the set under ``mpiexec`` (``sinebench`` does
it itself; across machines, start it with your own ``mpiexec`` and hostfile).
Every rank draws the same global batch of offsets from the same seed and takes
its contiguous shard; gradients are averaged with an all-reduce (NCCL on
GPUs, MPI on the CPU), so that an update equals one device's on the global
batch. Parameters are broadcast from rank 0 once at the start, explicitly:
ChainerMN's multi-node optimizer would spend its first ``update()`` on that
broadcast and skip the step, which would make update counts differ by one
from the other strategies.
"""
import sinelstm  # noqa: F401
import chainer

from sinelstm.updaters import Updater, shard
from sinelstm.verify import VerifyResult, max_param_diff, trained_params, verify_config

STRATEGY = "chainermn"


def create_communicator(device_set):
    """``pure_nccl`` on GPUs, ``naive`` (MPI on host memory) on the CPU; the
    rank's GPU is selected first, since NCCL binds to the current device."""
    import chainermn
    from chainermn.communicators.mpi_communicator_base import MpiCommunicatorBase

    if not device_set.is_gpu:
        return chainermn.create_communicator("naive")
    # The spec's k-th GPU is the GPU of each node's k-th rank, so that "0+1"
    # means GPUs 0 and 1 of one node, and also GPU 0 of each of two nodes.
    chainer.get_device(device_set.names[_intra_rank()]).use()
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
    if comm.size != device_set.n_devices and comm.inter_size == 1:
        raise RuntimeError(
            f"device set {device_set.spec!r} needs {device_set.n_devices} MPI ranks, got {comm.size}"
        )


class ChainerMNUpdater(Updater):
    """This rank's replica on its own device; all-reduce between backward and
    the optimizer."""

    def __init__(self, comm, model, optimizer, iterator, series, device, impl="sinebench"):
        super().__init__(model, optimizer, iterator, series, device, impl)
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


def updater_factory(comm, device_set):
    device = chainer.get_device(device_set.names[comm.intra_rank])

    def factory(model, optimizer, iterator, series, devices, impl):
        return ChainerMNUpdater(comm, model, optimizer, iterator, series, device, impl)

    return factory


def agreement(comm):
    """Stop when rank 0 says so, on every rank at once."""
    return lambda stop: bool(comm.bcast_obj(stop if comm.rank == 0 else None, root=0))


def verify_rank(comm, device_set, cfg=None):
    """Run on every rank; rank 0 returns the :class:`VerifyResult` against its
    device alone, the others ``None``."""
    cfg = cfg or verify_config(n_devices=device_set.n_devices)
    params = trained_params(cfg, None, updater_factory=updater_factory(comm, device_set))
    if comm.rank != 0:
        return None
    reference = trained_params(cfg, [chainer.get_device(device_set.names[0])])
    return VerifyResult(
        spec=device_set.spec,
        reference=device_set.first_spec,
        strategy=STRATEGY,
        impl=cfg.impl,
        updates=cfg.updates,
        max_diff=max_param_diff(params, reference),
    )
