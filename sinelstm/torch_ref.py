"""The PyTorch reference: what a PyTorch user would train instead, on the
same footing as sinebench's rows of a sweep.

``torch``        eager ``nn.LSTM``: cuDNN on a GPU, PyTorch's own kernels on
                 the CPU.
``torch-graph``  the whole update (window gather from the device-resident
                 series, forward, loss, backward, gradient clipping, Adam with
                 its learning rate in a device tensor) captured once with
                 ``torch.cuda.graph`` and replayed; one GPU.
``torch-ddp``    DistributedDataParallel, one process per device
                 (:mod:`sinelstm.torch_dist`).

Everything that decides the numbers is sinebench's own: the model's shape and
its initial weights (``SineLSTM(n_units, seed)``'s, mapped), the series and
split (:mod:`sinelstm.data`), the windows (:class:`WindowIterator` with the
run's seed, gathered with :func:`window_indices`), the recipe (burn-in outside
the loss, :func:`sinelstm.recipes.lr_at`, gradient clipping), the loss
(:func:`sinelstm.model.sequence_loss`'s formula) and the timed loop
(:mod:`sinelstm.train`, which drives these updaters through the same
interface as Chainer's). Evaluation runs the project's evaluators on a Chainer
``SineLSTM`` that holds the PyTorch weights, mapped back when the loop reads
``updater.model`` at an evaluation point, in the evaluation's time.

Weight layout: Chainer's 4n LSTM rows are (n, 4)-interleaved as (a, i, f, o);
PyTorch's are four blocks (i, f, g, o), its g being Chainer's a. PyTorch adds
two biases (b_ih + b_hh) where Chainer has one: b_ih holds Chainer's and b_hh
stays frozen at zero. A trainable b_hh would get the same gradient as b_ih,
so SGD would move their sum twice as far and Adam would not match either: a
different training run, not a reference.

This module imports torch at the top; nothing imports it unless a run asks
for a ``torch`` implementation (:func:`sinelstm.strategy.make_strategy`), so
that where PyTorch is absent such a run fails with ``ImportError``, which the
sweep records as ``unavailable``.
"""
import platform

import numpy as np
import torch
from torch import nn

import sinelstm  # noqa: F401  (NumPy 2 shim before chainer)
import chainer
from chainer.backends.cuda import to_cpu

from sinelstm.devices import DeviceSpecError
from sinelstm.iterator import WindowIterator
from sinelstm.model import SineLSTM
from sinelstm.names import SINGLE_DEVICE, TORCH_DDP, TORCH_GRAPH
from sinelstm.recipes import lr_at, lr_for
from sinelstm.strategy import OneProcess
from sinelstm.timing import CpuUpdateTimer, EventPairTimer
from sinelstm.updaters import Step


class TorchSineLSTM(nn.Module):
    """``Linear(1, n) -> LSTM(n, n) -> Linear(n, 1)`` over a whole window from
    a zero state, as :meth:`SineLSTM.forward_sequence`: (T, B) -> (T, B)."""

    def __init__(self, n_units: int):
        super().__init__()
        self.l1 = nn.Linear(1, n_units)
        self.l2 = nn.LSTM(n_units, n_units)
        self.l3 = nn.Linear(n_units, 1)
        self.l2.bias_hh_l0.requires_grad_(False)  # Chainer's LSTM has one bias (module docstring)

    def forward(self, xs):
        hs, _ = self.l2(self.l1(xs.unsqueeze(-1)))
        return self.l3(hs).squeeze(-1)


def gate_order(n: int) -> np.ndarray:
    """Row ``r`` of PyTorch's (i, f, g, o) blocks is row ``order[r]`` of
    Chainer's (n, 4)-interleaved (a, i, f, o) rows."""
    return np.array([4 * j + k for k in (1, 2, 0, 3) for j in range(n)])


def torch_state(model: SineLSTM) -> dict:
    """``model``'s parameters as a PyTorch state dict (CPU, float32)."""
    def get(p):
        return np.asarray(to_cpu(p.array), dtype=np.float32)

    order = gate_order(model.n_units)
    lstm = model.l2
    arrays = {"l1.weight": get(model.l1.W), "l1.bias": get(model.l1.b),
              "l2.weight_ih_l0": get(lstm.upward.W)[order], "l2.weight_hh_l0": get(lstm.lateral.W)[order],
              "l2.bias_ih_l0": get(lstm.upward.b)[order], "l2.bias_hh_l0": np.zeros(4 * model.n_units, np.float32),
              "l3.weight": get(model.l3.W), "l3.bias": get(model.l3.b)}
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


def copy_to_chainer(net: TorchSineLSTM, model: SineLSTM):
    """Write ``net``'s weights into ``model`` (on whatever device it is), in
    Chainer's layout; the two LSTM biases become its one."""
    sd = {k: v.detach().float().cpu().numpy() for k, v in net.state_dict().items()}
    order = gate_order(model.n_units)

    def chainer_rows(rows):
        out = np.empty_like(rows)
        out[order] = rows
        return out

    lstm = model.l2
    for param, value in ((model.l1.W, sd["l1.weight"]), (model.l1.b, sd["l1.bias"]),
                         (lstm.upward.W, chainer_rows(sd["l2.weight_ih_l0"])),
                         (lstm.lateral.W, chainer_rows(sd["l2.weight_hh_l0"])),
                         (lstm.upward.b, chainer_rows(sd["l2.bias_ih_l0"] + sd["l2.bias_hh_l0"])),
                         (model.l3.W, sd["l3.weight"]), (model.l3.b, sd["l3.bias"])):
        param.array[...] = model.device.send(value)


def sequence_loss(ys, ts):
    """:func:`sinelstm.model.sequence_loss` in PyTorch: the per-step mean
    squared error, summed over the window's (scored) steps."""
    return nn.functional.mse_loss(ys, ts) * ys.shape[0]


def torch_device(chainer_name: str) -> torch.device:
    """'@numpy' -> cpu, '@cupy:1' -> cuda:1."""
    return torch.device("cpu") if chainer_name == "@numpy" else torch.device("cuda", int(chainer_name.split(":")[1]))


def use_gpu(dev: torch.device, chainer_name: str, precision: str = "fp32"):
    """Make ``dev`` current for PyTorch and for CuPy (the Chainer model that
    evaluates lives there too), and compute in the run's precision: PyTorch
    lets cuDNN's RNNs use TF32 unless told not to, so an fp32 row says no and
    a tf32 row yes, as sinebench's TF32 rows let cuBLAS."""
    torch.cuda.set_device(dev)
    chainer.get_device(chainer_name).use()
    tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32


class TorchCudaTimer(EventPairTimer):
    """:class:`sinelstm.timing.CudaUpdateTimer` with PyTorch's events: one
    pair around every update on the device's current stream, read after the
    loop, so that timing adds no host sync."""

    def __init__(self, device: torch.device):
        super().__init__()
        self._device = device

    def _event(self):
        ev = torch.cuda.Event(enable_timing=True)
        ev.record(torch.cuda.current_stream(self._device))
        return ev

    def _elapsed_ms(self, a, b) -> float:
        return a.elapsed_time(b)


class TorchDevice:
    """What the training loop asks of an updater's device: a clock
    (:func:`sinelstm.timing.make_update_timer`)."""

    def __init__(self, device: torch.device):
        self.torch = device
        self.is_gpu = device.type == "cuda"

    def update_timer(self):
        # PyTorch's CPU kernels return when done, as Chainer's do: a
        # perf_counter pair is exact there.
        return TorchCudaTimer(self.torch) if self.is_gpu else CpuUpdateTimer()

    def synchronize(self):
        if self.is_gpu:
            torch.cuda.synchronize(self.torch)


class Offsets:
    """Window offsets into one device buffer without a host sync: on a GPU,
    through a ring of pinned host buffers, each written again only once the
    copy that last read it has run (a copy from pageable memory would wait
    for the device, and a single pinned buffer could be overwritten before
    its copy ran)."""

    SLOTS = 4

    def __init__(self, batch: int, device: torch.device):
        self.gpu = device.type == "cuda"
        self.buffer = torch.zeros(batch, dtype=torch.int64, device=device)
        if self.gpu:
            self._slots = [(torch.empty(batch, dtype=torch.int64).pin_memory(), torch.cuda.Event())
                           for _ in range(self.SLOTS)]
            self._k = 0

    def send(self, offsets: np.ndarray):
        if not self.gpu:
            self.buffer.copy_(torch.from_numpy(offsets))
            return self.buffer
        self._k = (self._k + 1) % self.SLOTS
        host, copied = self._slots[self._k]
        copied.synchronize()  # returns at once if never recorded
        host.numpy()[:] = offsets
        self.buffer.copy_(host, non_blocking=True)
        copied.record()
        return self.buffer


def learning_rate(cfg) -> tuple:
    """(peak lr, schedule or None) as :mod:`sinelstm.strategy` derives them
    for Chainer's optimizers."""
    lr = cfg.lr if cfg.lr is not None else lr_for(cfg.recipe, cfg.batchsize)
    return lr, None if cfg.recipe.lr_final is None else (lambda k: lr_at(cfg.recipe, k, lr))


class TorchUpdater:
    """Eager PyTorch on one device, or one rank's share of the batch
    (``rank``, ``ranks``; :mod:`sinelstm.torch_dist` wraps the net in DDP).

    The interface is :class:`sinelstm.updaters.Updater`'s as the training
    loop, ``profile`` and ``verify`` use it: ``update``, ``loss_value``,
    ``synchronize``, ``phases``, ``model``, ``device``, ``iterator``, ``path``."""

    path = "eager"  # how the update runs, as sinelstm.updaters.Updater says it

    def __init__(self, cfg, chainer_name: str, rank: int = 0, ranks: int = 1):
        dev = torch_device(chainer_name)
        if dev.type == "cuda":
            use_gpu(dev, chainer_name, cfg.precision)
        self.device = TorchDevice(dev)
        self.mirror = SineLSTM(cfg.n_units, seed=cfg.seed)
        self.net = TorchSineLSTM(cfg.n_units)
        self.net.load_state_dict(torch_state(self.mirror))
        self.net.to(dev)
        self.mirror.to_device(chainer_name)
        self.module = self.net  # what the forward pass calls (DDP wraps it)
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.iterator = WindowIterator(cfg.data.n_train, cfg.batchsize, cfg.seqlen, seed=cfg.seed)
        train_series, _ = cfg.data.split()
        self.series = torch.as_tensor(train_series, device=dev)  # resident for the whole run
        # window_indices' step column, made on the device once (its arange
        # would land on the host).
        self.steps = torch.arange(cfg.seqlen + 1, device=dev)[:, None]
        self.seqlen, self.burn_in, self.clip = cfg.seqlen, cfg.recipe.burn_in, cfg.recipe.grad_clip
        self.rank, self.ranks = rank, ranks
        if cfg.batchsize % ranks:
            raise ValueError(f"batch size {cfg.batchsize} is not divisible by {ranks} devices")
        self.offsets = Offsets(cfg.batchsize // ranks, dev)
        lr, self.schedule = learning_rate(cfg)
        self.optimizer = self.make_optimizer(cfg.optimizer, lr)
        self.t = 0  # updates done
        self._mirrored = 0  # the update whose weights the mirror holds

    def make_optimizer(self, name: str, lr: float):
        if name == "adam":
            return torch.optim.Adam(self.params, lr=lr)
        if name == "sgd":
            return torch.optim.SGD(self.params, lr=lr)
        raise ValueError(f"unknown optimizer {name!r}; choose adam or sgd")

    @property
    def model(self) -> SineLSTM:
        """The Chainer model, holding the weights of the last update: mapped
        back when read, so the project's evaluators, checkpoints and
        ``verify`` see what PyTorch trained."""
        if self._mirrored != self.t:
            copy_to_chainer(self.net, self.mirror)
            self._mirrored = self.t
        return self.mirror

    # -- phases ---------------------------------------------------------------
    def next_offsets(self):
        """This rank's shard of the next global batch's offsets, on the device."""
        return self.offsets.send(np.split(next(self.iterator), self.ranks)[self.rank])

    def gather(self, offsets):
        """The windows at ``offsets`` as :func:`window_indices` lays them
        out, gathered on the device: (inputs, targets), each (T, B)."""
        window = self.series[self.steps + offsets[None, :]]
        return window[:-1], window[1:]

    def loss(self, xs, ts):
        ys = self.module(xs)
        b = self.burn_in
        return sequence_loss(ys[b:], ts[b:]) if b else sequence_loss(ys, ts)

    def data(self, step):
        step.batches = [self.gather(self.next_offsets())]

    def forward(self, step):
        step.losses = [self.loss(*step.batches[0])]

    def backward(self, step):
        self.optimizer.zero_grad(set_to_none=True)
        step.losses[0].backward()

    def communicate(self, step):
        pass  # one device; DDP exchanges gradients inside backward

    def optimize(self, step):
        if self.clip is not None:
            nn.utils.clip_grad_norm_(self.params, self.clip)
        if self.schedule is not None:
            self.set_lr(self.schedule(self.t))
        self.optimizer.step()
        self.t += 1

    def set_lr(self, lr: float):
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def phases(self):
        return [("data", self.data), ("forward", self.forward), ("backward", self.backward),
                ("communication", self.communicate), ("optimizer", self.optimize)]

    # -- one update -----------------------------------------------------------
    def update(self):
        """One update; returns its loss as a device tensor, not fetched."""
        step = Step()
        for _, phase in self.phases():
            phase(step)
        return step.losses

    def loss_value(self, losses) -> float:
        return float(sum(loss.item() for loss in losses))

    def synchronize(self):
        self.device.synchronize()


class TorchGraphUpdater(TorchUpdater):
    """The whole update as one CUDA graph, replayed: per update the host only
    sends the offsets, sets the learning rate in its device tensor and
    launches the graph.

    Capture needs warm-up updates first (on a side stream, as PyTorch's
    whole-network capture example does: cuDNN and autograd set themselves up,
    Adam creates its state); they move the weights and fill Adam's moments,
    so both are put back afterwards, in place, since the graph holds their
    addresses. The first replay therefore starts from the seed's weights and
    a fresh optimizer, as every other implementation does."""

    path = "cuda-graph"

    WARMUP = 3

    def __init__(self, cfg, chainer_name: str, rank: int = 0, ranks: int = 1):
        if not chainer_name.startswith("@cupy"):
            raise DeviceSpecError(f"{TORCH_GRAPH} replays a CUDA graph: it needs a GPU, not the CPU")
        super().__init__(cfg, chainer_name, rank, ranks)
        self._capture()

    def make_optimizer(self, name: str, lr: float):
        # The learning rate lives in a device tensor that the graph reads,
        # so that the schedule can change it between replays.
        self.lr = torch.tensor(lr, dtype=torch.float32, device=self.device.torch)
        if name == "adam":
            return torch.optim.Adam(self.params, lr=self.lr, capturable=True)
        if name == "sgd":  # fused: the foreach SGD reads a tensor lr on the host
            return torch.optim.SGD(self.params, lr=self.lr, fused=True)
        raise ValueError(f"unknown optimizer {name!r}; choose adam or sgd")

    def set_lr(self, lr: float):
        self.lr.fill_(lr)

    def _whole_update(self):
        """What the graph records: gather, forward, loss, backward, clip, step."""
        loss = self.loss(*self.gather(self.offsets.buffer))
        loss.backward()
        if self.clip is not None:
            nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
        self.optimizer.step()
        return loss

    def _capture(self):
        initial = [p.detach().clone() for p in self.net.parameters()]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.WARMUP):  # offsets 0: the buffer starts zeroed
                self.optimizer.zero_grad(set_to_none=True)
                self._whole_update()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # backward allocates the gradients in the graph's pool
        with torch.cuda.graph(self.graph):
            self.static_loss = self._whole_update()
        with torch.no_grad():
            for p, p0 in zip(self.net.parameters(), initial):
                p.copy_(p0)
            for state in self.optimizer.state.values():
                for value in state.values():
                    if torch.is_tensor(value):
                        value.zero_()  # Adam's step count and moments: a fresh optimizer
        self.synchronize()

    def update(self):
        self.next_offsets()  # into the buffer the graph reads
        if self.schedule is not None:
            self.set_lr(self.schedule(self.t))
        self.graph.replay()
        self.t += 1
        return [self.static_loss]

    def phases(self):
        """None: one replay has no phases to time apart (profile skips it)."""
        return []


class TorchSingle(OneProcess):
    """One device, in this process: the strategy of ``torch`` and
    ``torch-graph`` rows (and of ``torch-ddp``'s one-device reference)."""

    name = SINGLE_DEVICE

    def __init__(self, device_set, updater_cls):
        self.device_set = device_set
        self.updater_cls = updater_cls
        self.hosts = platform.node()  # where the run ran, as sinelstm.strategy's strategies say

    def make_updater(self, cfg, scale_losses: bool = True):
        return self.updater_cls(cfg, self.device_set.names[0])


def make_torch_strategy(impl: str, device_set):
    """The strategy a ``torch`` implementation trains ``device_set`` with; a
    combination it cannot run raises :class:`DeviceSpecError` (the sweep's
    ``unavailable``). On one device ``torch-ddp`` is plain ``torch``: the
    reference ``verify`` compares it with."""
    if device_set.n_devices > 1:
        if impl == TORCH_DDP:
            from sinelstm.torch_dist import TorchDDP

            return TorchDDP(device_set)
        raise DeviceSpecError(f"{impl} trains on one device; {device_set.spec!r} has {device_set.n_devices} "
                              f"(use {TORCH_DDP})")
    if impl == TORCH_GRAPH:
        if not device_set.is_gpu:
            raise DeviceSpecError(f"{TORCH_GRAPH} replays a CUDA graph: it needs a GPU, not {device_set.spec!r}")
        return TorchSingle(device_set, TorchGraphUpdater)
    return TorchSingle(device_set, TorchUpdater)
