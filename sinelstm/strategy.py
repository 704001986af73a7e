"""How a device set trains: one process for every device, or one per device.

A strategy makes the updater for a training config, lets the processes of a
run take the same decision (stop now?) and says which of them reports and on
which hosts (``hosts``: 'a+b' for ranks on two nodes) the run ran. The
training loop, the profile and ``verify`` take a strategy and never ask which
one it is.

``single-process``  one Python process drives every replica
                    (:class:`sinelstm.updaters.ParallelUpdater`); a one-device
                    set is its trivial case, named ``single-device``.
``chainermn``       one process per device under MPI, gradients averaged by an
                    all-reduce (:mod:`sinelstm.mn`).
"""
import platform

import sinelstm  # noqa: F401
import chainer

from sinelstm.graph import GRAPH_IMPL, make_graph_updater
from sinelstm.iterator import WindowIterator
from sinelstm.model import SineLSTM
from sinelstm.names import IMPLS, SINGLE_DEVICE, STRATEGIES, is_torch
from sinelstm.recipes import lr_at, lr_for
from sinelstm.updaters import make_optimizer, make_updater


def _parts(cfg):
    """A fresh model, optimizer, iterator and series, and the updater's
    settings: the same for every strategy, so that they all start from the
    seed's weights and batches and follow the same schedule."""
    model = SineLSTM(cfg.n_units, seed=cfg.seed)
    iterator = WindowIterator(cfg.data.n_train, cfg.batchsize, cfg.seqlen, seed=cfg.seed)
    train_series, _ = cfg.data.split()
    lr = cfg.lr if cfg.lr is not None else lr_for(cfg.recipe, cfg.batchsize)
    # A constant rate needs no call per update in the timed loop.
    schedule = None if cfg.recipe.lr_final is None else (lambda k: lr_at(cfg.recipe, k, lr))
    settings = {"impl": cfg.impl, "burn_in": cfg.recipe.burn_in, "grad_clip": cfg.recipe.grad_clip,
                "schedule": schedule}
    if cfg.impl == GRAPH_IMPL:
        # The compiled update evaluates the schedule on the device.
        settings.update(recipe=cfg.recipe, lr=lr)
    return (model, make_optimizer(cfg.optimizer, lr), iterator, train_series), settings


class OneProcess:
    """A run of one process: it reports, and its decisions are its own (the
    base of :class:`SingleProcess` and of the PyTorch reference's
    ``TorchSingle``)."""

    reports = True  # this process writes the results
    collective = False  # no other process to agree with
    rank = 0  # this process's rank in its job

    def agree(self, stop: bool) -> bool:
        return stop

    def any_rank(self, flag: bool) -> bool:
        return flag

    def slowest(self, ms: float) -> float:
        return ms


class MpiRanks:
    """The decisions of a run of one MPI rank per device, taken by every rank
    at the same point of the loop over ``mpi``, the job's mpi4py
    communicator (the base of :class:`OneProcessPerDevice` and of
    ``torch_dist.TorchDDP``)."""

    collective = True  # decisions are taken together, at the same points
    mpi = None  # the job's mpi4py communicator, set by the subclass
    rank = 0

    def agree(self, stop: bool) -> bool:
        """Rank 0 decides for every rank."""
        return bool(self.mpi.bcast(stop if self.rank == 0 else None, root=0))

    def any_rank(self, flag: bool) -> bool:
        """True on every rank if it is true on one (a slow host under any
        rank slows them all)."""
        return self.mpi.allreduce(int(flag)) > 0

    def slowest(self, ms: float) -> float:
        """The largest of every rank's ``ms``, on every rank (the job runs
        at its slowest rank's pace)."""
        from mpi4py import MPI

        return self.mpi.allreduce(float(ms), op=MPI.MAX)


class SingleProcess(OneProcess):
    """Every device of the set in this process."""

    def __init__(self, device_set):
        self.device_set = device_set
        self.name = SINGLE_DEVICE if device_set.n_devices == 1 else STRATEGIES[0]
        self.devices = device_set.devices()
        self.hosts = platform.node()

    def make_updater(self, cfg, scale_losses: bool = True):
        parts, settings = _parts(cfg)
        if cfg.impl == GRAPH_IMPL:
            if len(self.devices) > 1:
                raise ValueError("the graph implementation runs one device per process: "
                                 "use --strategy chainermn for several devices")
            return make_graph_updater(*parts, self.devices[0], **settings)
        return make_updater(*parts, self.devices, scale_losses, **settings)


class OneProcessPerDevice(MpiRanks):
    """This process is one rank of an MPI job with a rank per device."""

    name = STRATEGIES[1]

    def __init__(self, device_set):
        from sinelstm import mn

        self.device_set = device_set
        self.comm = mn.create_communicator(device_set)
        self.mpi = self.comm.mpi_comm
        mn.check_world(self.comm, device_set)
        self.device = chainer.get_device(device_set.rank_device(self.comm.intra_rank))
        self.rank = self.comm.rank
        self.reports = self.rank == 0
        self.hosts = mn.hosts(self.comm)

    def make_updater(self, cfg, scale_losses: bool = True):
        from sinelstm.mn import ChainerMNUpdater

        parts, settings = _parts(cfg)
        if cfg.impl == GRAPH_IMPL:
            return make_graph_updater(*parts, self.device, comm=self.comm, **settings)
        return ChainerMNUpdater(self.comm, *parts, self.device, **settings)


def make_strategy(name: str, device_set, impl: str = IMPLS[0]):
    """The strategy ``name`` for ``device_set`` (one device: always single).
    The PyTorch reference's implementations bring their own
    (:func:`sinelstm.torch_ref.make_torch_strategy`, imported only then)."""
    if is_torch(impl):
        from sinelstm.torch_ref import make_torch_strategy

        return make_torch_strategy(impl, device_set)
    if name == STRATEGIES[1] and device_set.n_devices > 1:
        return OneProcessPerDevice(device_set)
    if name in (SINGLE_DEVICE, STRATEGIES[0]) or device_set.n_devices == 1:
        return SingleProcess(device_set)
    raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
