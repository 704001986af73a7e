"""Updaters: one training update = data, forward, backward, communication,
optimizer. Each phase is a method, so that :func:`sinelstm.profile` can time
them one by one while :meth:`Updater.update` runs them back to back.
"""
import numpy as np

import sinelstm  # noqa: F401
import chainer
import chainer.optimizers as O
from chainer.optimizer_hooks import GradientClipping

from sinelstm.impls import make_impl
from sinelstm.names import PHASES  # noqa: F401  (profile reads it here)


def make_optimizer(name: str = "adam", lr: float | None = None):
    """Adam (``lr`` is its alpha, default 0.001) or SGD (default lr 0.01)."""
    if name == "adam":
        return O.Adam(alpha=0.001 if lr is None else lr)
    if name == "sgd":
        return O.SGD(lr=0.01 if lr is None else lr)
    raise ValueError(f"unknown optimizer {name!r}; choose adam or sgd")


def set_lr(optimizer, lr: float):
    """Adam calls its learning rate alpha, SGD lr."""
    setattr(optimizer.hyperparam, "alpha" if hasattr(optimizer.hyperparam, "alpha") else "lr", lr)


def shard(offsets: np.ndarray, n: int) -> list:
    """Split the global batch into ``n`` contiguous, equal shards."""
    if len(offsets) % n:
        raise ValueError(f"batch size {len(offsets)} is not divisible by {n} devices")
    return np.split(offsets, n)


class Step:
    """What the phases of one update pass to each other."""

    __slots__ = ("offsets", "batches", "losses")


class Updater:
    """One model on one device (CPU or a GPU): the single-device updater.

    Subclasses add replicas and communication; the loss of each replica is
    scaled by its share of the global batch, so every device set computes the
    gradient of the same global-batch loss.
    """

    path = "eager"  # how the update runs (sinelstm.graph's updater says otherwise)

    def __init__(self, model, optimizer, iterator, series, device, impl="sinebench", burn_in=0, schedule=None,
                 grad_clip=None):
        self.iterator = iterator
        self.device = device
        model.to_device(device)
        self.model = model
        self.optimizer = optimizer
        optimizer.setup(model)
        if grad_clip is not None:
            # On the summed (or all-reduced) gradient, as one device would.
            optimizer.add_hook(GradientClipping(grad_clip))
        self.replicas = [model]
        self.impl_name, self.series, self.burn_in = impl, series, burn_in
        self.impls = [self.make_impl(device)]
        self.loss_scales = [1.0]
        self.schedule = schedule  # learning rate for update k, or None: constant

    def make_impl(self, device):
        return make_impl(self.impl_name, self.series, device, self.iterator.seqlen, self.burn_in)

    # -- phases ---------------------------------------------------------------
    def data(self, step):
        step.offsets = next(self.iterator)
        step.batches = []
        for impl, s in zip(self.impls, self.shards(step.offsets)):
            # Index arithmetic and the gather must run on the replica's own
            # GPU, not the current one, or the fused kernel reads across GPUs.
            with chainer.using_device(impl.device):
                step.batches.append(impl.load(s))

    def shards(self, offsets) -> list:
        """This process's replicas' parts of the global batch, in order."""
        return shard(offsets, len(self.replicas))

    def forward(self, step):
        step.losses = []
        for model, impl, batch, scale in zip(self.replicas, self.impls, step.batches, self.loss_scales):
            with chainer.using_device(impl.device):
                loss = impl.loss(model, batch)
                step.losses.append(loss * scale if scale != 1.0 else loss)

    def backward(self, step):
        for model, impl, loss in zip(self.replicas, self.impls, step.losses):
            model.cleargrads()
            with chainer.using_device(impl.device):
                loss.backward()

    def communicate(self, step):
        pass

    def optimize(self, step):
        if self.schedule is not None:
            set_lr(self.optimizer, self.schedule(self.optimizer.t))
        with chainer.using_device(self.device):
            self.optimizer.update()

    def finish(self, step):
        """After the optimizer: anything that makes replicas agree again."""

    def phases(self):
        return [
            ("data", self.data),
            ("forward", self.forward),
            ("backward", self.backward),
            ("communication", self.communicate),
            ("optimizer", self.optimize),
            ("communication", self.finish),
        ]

    # -- one update -----------------------------------------------------------
    def update(self):
        """Run one update; returns each replica's (scaled) loss, not fetched,
        so that no host sync is forced. Their sum is the global-batch loss."""
        step = Step()
        for _, phase in self.phases():
            phase(step)
        return step.losses

    def loss_value(self, losses) -> float:
        """The global-batch loss of an update, fetched to the host."""
        return float(sum(float(loss.array) for loss in losses))

    def synchronize(self):
        for impl in self.impls:
            _synchronize(impl.device)


class ParallelUpdater(Updater):
    """Several replicas in one process (Chainer's ParallelUpdater scheme, with
    the article's two faults fixed): the batch is split across replicas,
    every replica's gradients are summed into the master, the master steps,
    and its parameters are copied back to every replica.

    ``scale_losses=False`` reproduces the article's unscaled sum of replica
    losses (fault 2); it exists so that tests can show the check catches it.
    """

    def __init__(self, model, optimizer, iterator, series, devices, scale_losses=True, **kwargs):
        super().__init__(model, optimizer, iterator, series, devices[0], **kwargs)
        n = len(devices)
        for device in devices[1:]:
            replica = model.copy(mode="copy")
            replica.to_device(device)
            self.replicas.append(replica)
            self.impls.append(self.make_impl(device))
        self.loss_scales = [1.0 / n if scale_losses else 1.0] * n

    def communicate(self, step):
        master = self.model
        for replica, impl in zip(self.replicas[1:], self.impls[1:]):
            _order(impl.device, self.device)
            with chainer.using_device(self.device):
                master.addgrads(replica)

    def finish(self, step):
        master = self.model
        for replica, impl in zip(self.replicas[1:], self.impls[1:]):
            _order(self.device, impl.device)
            with chainer.using_device(impl.device):
                replica.copyparams(master)


def _is_gpu(device) -> bool:
    return device.xp is not np


def _order(src, dst):
    """Make work queued next on ``dst`` wait for what is queued on ``src``,
    without blocking the host: cross-GPU copies do not wait by themselves."""
    if not (_is_gpu(src) and _is_gpu(dst)) or src == dst:
        return
    import cupy

    with chainer.using_device(src):
        event = cupy.cuda.Event(block=False, disable_timing=True)
        event.record()
    with chainer.using_device(dst):
        cupy.cuda.get_current_stream().wait_event(event)


def _synchronize(device):
    if _is_gpu(device):
        device.device.synchronize()


def make_updater(model, optimizer, iterator, series, devices, scale_losses=True, **kwargs):
    """The single-device updater for one device, the parallel one for more;
    ``kwargs`` as :class:`Updater` takes them."""
    if len(devices) == 1:
        return Updater(model, optimizer, iterator, series, devices[0], **kwargs)
    return ParallelUpdater(model, optimizer, iterator, series, devices, scale_losses, **kwargs)
