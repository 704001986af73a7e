"""The ``graph`` implementation: one training update as one compiled unit.

On a GPU the update — window gather, forward, loss, backward, gradient
all-reduce, clipping and the optimizer step — is a handful of kernels (and
cuBLAS products above ``MAX_UNITS``, see below) and, with one process per
GPU, an NCCL all-reduce, captured once as a CUDA graph and replayed: the
host's cost per update is one graph launch, whatever the window length. On the CPU the same
update is three Numba-compiled loops (:mod:`sinelstm.graph_cpu`) and an MPI
all-reduce between ranks. Either way the model's parameters and the
optimizer's moments live in flat buffers that the Chainer model and optimizer
are re-pointed at (:mod:`sinelstm.flat`), so evaluation, checkpoints and
``verify`` read them as for any other implementation.

Two GPU paths, chosen by size (:func:`compiled_path`): up to
``graph_cuda.MAX_UNITS`` the persistent kernels, where fixed cost is all
that matters; above, :mod:`sinelstm.graph_gemm`, the same update as cuBLAS
products and fused elementwise kernels per time step, still captured, so
that the host's cost stays one launch and the all-reduce overlaps the last
gradient products. Either runs one device per process. On the CPU, sizes
above ``MAX_UNITS`` take the eager path (NumPy's BLAS does the work there);
:func:`make_graph_updater` returns the eager updater and says so in
``path``, which every run records.
"""
import math
import weakref

import numpy as np

import sinelstm  # noqa: F401

from sinelstm.flat import FlatState, LAYOUT
from sinelstm.names import GRAPH_IMPL  # noqa: F401  (strategy imports it here)
from sinelstm.recipes import lr_at
from sinelstm.updaters import Step, Updater, set_lr, shard

# Window offsets are drawn on the host and uploaded this many updates at a
# time: the graph reads update k's from device memory.
CHUNK = 1024
PATH_GPU, PATH_GEMM, PATH_CPU, PATH_EAGER = "cuda-graph", "cuda-graph-gemm", "numba", "eager"
NCCL_AVG = 4  # ncclAvg in nccl.h (NCCL >= 2.10; not every CuPy names it)


def compiled_path(is_gpu: bool, n_units: int) -> str:
    """Which path the ``graph`` implementation takes for this size: on a
    GPU the persistent kernels up to ``graph_cuda.MAX_UNITS``, captured
    cuBLAS products above; on the CPU the compiled loops up to the same
    size, the eager path above (where NumPy's BLAS does the work)."""
    from sinelstm.graph_cuda import MAX_UNITS

    if n_units > MAX_UNITS:
        return PATH_GEMM if is_gpu else PATH_EAGER
    return PATH_GPU if is_gpu else PATH_CPU


class GraphUpdater:
    """One replica on one device (this process's, under MPI: ``comm``),
    with the updater interface the training loop, the profile and ``verify``
    use: ``update``, ``loss_value``, ``synchronize``, ``phases``."""

    def __init__(self, model, optimizer, iterator, series, device, *, recipe, lr, burn_in=0, grad_clip=None,
                 comm=None):
        model.to_device(device)
        optimizer.setup(model)
        if comm is not None:
            comm.bcast_data(model)  # before the flat views: it may replace arrays
        self.model, self.optimizer, self.iterator, self.device, self.comm = model, optimizer, iterator, device, comm
        self.size, self.rank = (comm.size, comm.rank) if comm is not None else (1, 0)
        self.is_gpu = device.xp is not np
        self.path = compiled_path(self.is_gpu, model.n_units)
        self.flat = FlatState(model, optimizer, device.xp)
        self.n = model.n_units
        self.batch_global = iterator.batchsize
        self.batch = len(shard(np.zeros(self.batch_global), self.size)[0])
        self.seqlen, self.burn_in = iterator.seqlen, burn_in
        self.clip = float(grad_clip or 0.0)
        hp = optimizer.hyperparam
        self.adam = self.flat.adam
        self.beta1, self.beta2, self.eps = (hp.beta1, hp.beta2, hp.eps) if self.adam else (0.0, 0.0, 0.0)
        # The schedule of sinelstm.recipes.lr_at, evaluated by the optimizer
        # kernel from the update count: lr(k) = peak * ratio ** (min(k, d) / d).
        self.peak = lr
        self.recipe = recipe
        decays = recipe is not None and recipe.lr_final is not None
        self.decay = recipe.decay_updates if decays else 0
        self.log_ratio = math.log(recipe.lr_final / recipe.lr) if decays else 0.0
        self.k = 0  # updates done (the device keeps its own count on a GPU)
        self.offsets_o = np.array([self.flat.start(name) for name, _ in LAYOUT], np.int64)
        if self.is_gpu:
            if self.path == PATH_GPU:
                self._gpu = PersistentGraphs(self, series)
            else:
                from sinelstm.graph_gemm import GemmGraphs

                self._gpu = GemmGraphs(self, series)
                self.path = f"{PATH_GEMM} ({self._gpu.plan})"
        else:
            # Imported here: Numba's import (0.25-0.7 s) would otherwise be
            # paid by every run's process, whatever its implementation.
            from sinelstm import graph_cpu

            self._loops = graph_cpu
            self.series = np.ascontiguousarray(series, dtype=np.float32)
            T, B, G = self.seqlen, self.batch, 4 * self.n
            self.act = np.empty((B, T, G), np.float32)
            self.cs = np.empty((B, T, self.n), np.float32)
            self.hs = np.empty((B, T, self.n), np.float32)
            self.dy = np.empty((B, T), np.float32)
            self._loss = float("nan")
            # SGD has no moments: the step loop is given empty arrays.
            self._m, self._v = (self.flat.m, self.flat.v) if self.adam else (self.flat.grads[:0],) * 2

    # -- the learning rate, as the eager path sets it ---------------------------
    def lr_at(self, k: int) -> float:
        return lr_at(self.recipe, k, self.peak) if self.recipe is not None else self.peak

    # -- phases (CPU: compiled loops; GPU: one captured graph each) ------------
    def phases(self):
        if self.is_gpu:
            return self._gpu.phases()
        return [("data", self._cpu_data), ("forward", self._cpu_forward), ("backward", self._cpu_backward),
                ("communication", self._cpu_communicate), ("optimizer", self._cpu_optimize)]

    def _cpu_data(self, step):
        step.offsets = shard(next(self.iterator), self.size)[self.rank]

    def _cpu_forward(self, step):
        self._loss = self._loops.forward(self.series, step.offsets, self.seqlen, self.burn_in, 1.0 / self.batch,
                                         self.flat.params, self.offsets_o, self.n, self.act, self.cs, self.hs,
                                         self.dy)

    def _cpu_backward(self, step):
        self._loops.backward(self.series, step.offsets, self.seqlen, self.flat.params, self.flat.grads,
                             self.offsets_o, self.n, self.act, self.cs, self.hs, self.dy)

    def _cpu_communicate(self, step):
        if self.comm is not None:
            from mpi4py import MPI

            self.comm.mpi_comm.Allreduce(MPI.IN_PLACE, self.flat.grads, op=MPI.SUM)

    def _cpu_optimize(self, step):
        f = self.flat
        self._loops.step(f.params, f.grads, self._m, self._v, 1.0 / self.size, self.clip, self.lr_at(self.k),
                         self.k + 1, self.beta1, self.beta2, self.eps, self.adam)
        self.k += 1

    # -- one update --------------------------------------------------------------
    def update(self):
        if self.is_gpu:
            self._gpu.replay()
            self.k += 1
            return None
        step = Step()
        self._cpu_data(step)
        self._cpu_forward(step)
        self._cpu_backward(step)
        self._cpu_communicate(step)
        self._cpu_optimize(step)
        return None

    def loss_value(self, losses=None) -> float:
        """The last update's global-batch loss (waits for the device)."""
        self.synchronize()
        value = float(self._gpu.loss.get()[0]) if self.is_gpu else float(self._loss)
        if self.comm is not None:
            value = float(self.comm.allreduce_obj(value)) / self.size
        return value

    def synchronize(self):
        if self.is_gpu:
            self.device.device.synchronize()
        self._sync_optimizer()

    def _sync_optimizer(self):
        """The Chainer optimizer's counters, as the eager path leaves them."""
        self.optimizer.t = self.k
        for rule in self.flat.rules:
            rule.t = self.k
        set_lr(self.optimizer, self.lr_at(self.k - 1) if self.k else self.peak)


class GpuGraphs:
    """What both GPU paths share: the update counter and window offsets in
    device memory, the NCCL communicator, capture and replay. A path adds its
    buffers (``setup``) and its recorded operations, named per phase in
    ``OPS`` (and ``WHOLE``, the operations of the whole update, where they
    are not the phases' one after another). Operations are named, not bound
    methods: bound methods kept on self would make a reference cycle."""

    OPS: tuple = ()
    WHOLE: tuple | None = None

    def __init__(self, up: GraphUpdater, series):
        import cupy

        # A weak reference: no cycle between the updater and its graphs, so
        # that they are freed the moment the updater is dropped — on every
        # rank at the same point — and not by a garbage collection that
        # could come while another rank waits in a collective (a captured
        # all-reduce's graph then hangs its peers).
        self.up, self.cupy = weakref.proxy(up), cupy
        with up.device.device:
            self.series = cupy.asarray(series, dtype=cupy.float32)
            self.offs = cupy.zeros((CHUNK, up.batch_global), cupy.int64)
            self.counter = cupy.zeros(1, cupy.int32)
            self.loss = cupy.zeros(1, cupy.float32)
            self.nccl = None
            if up.comm is not None:
                up.comm._init_comms()  # ChainerMN creates its NCCL communicator lazily
                self.nccl = up.comm.nccl_comm
            self.capture_stream = cupy.cuda.Stream(non_blocking=True)
            self.setup()
            if self.nccl is not None:
                self._warm_nccl()
            self.whole = self._capture(self.WHOLE or [op for _, op in self.OPS])
            self.graphs = {name: self._capture([op]) for name, op in self.OPS}

    def setup(self):
        """The path's kernels and buffers (on the updater's device)."""

    def _warm_nccl(self):
        """One real all-reduce of the gradient buffer's size and type before
        capture: NCCL connects its channels lazily, at a communicator's
        first collective of a kind, and that setup (collective across ranks,
        with allocations) cannot happen inside a capture — it hangs there."""
        from cupy.cuda import nccl

        s = self.capture_stream
        scratch = self.cupy.zeros_like(self.up.flat.grads)
        self.nccl.allReduce(scratch.data.ptr, scratch.data.ptr, scratch.size, nccl.NCCL_FLOAT32, NCCL_AVG, s.ptr)
        s.synchronize()

    def _capture(self, ops):
        s = self.capture_stream
        with s:
            s.begin_capture()
            try:
                for op in ops:
                    getattr(self, op)(s)
            finally:
                graph = s.end_capture()
        graph.upload(s)
        s.synchronize()
        return graph

    def _allreduce_range(self, buf, start, stop, stream):
        """Average ``buf[start:stop]`` over the ranks, in place, on
        ``stream``: NCCL divides as it sums, so the optimizer takes the
        mean gradient as it is (the cuBLAS path's with no pass of its own
        to scale it and write it back)."""
        from cupy.cuda import nccl

        ptr = buf.data.ptr + start * buf.itemsize
        self.nccl.allReduce(ptr, ptr, stop - start, nccl.NCCL_FLOAT32, NCCL_AVG, stream.ptr)

    def _common(self):
        """Where the kernels find update k's windows."""
        up = self.up
        return (self.series, self.offs, self.counter, np.int32(CHUNK), np.int32(up.batch_global),
                np.int32(up.rank * up.batch), np.int32(up.seqlen))

    # replay
    def _refill(self):
        """Update k's window offsets must be in device memory before its
        replay: every CHUNK updates, draw the next CHUNK batches."""
        if self.up.k % CHUNK == 0:
            host = np.stack([next(self.up.iterator) for _ in range(CHUNK)])
            self.offs.set(host)  # synchronous: earlier replays have read theirs

    def replay(self):
        self._refill()
        self.whole.launch(self.cupy.cuda.get_current_stream())

    def phases(self):
        """For the profile: each phase's own graph (the data phase also
        uploads offsets when a chunk is used up, and leaves the update's
        window offsets, in device memory, in ``step.offsets``, as the other
        updaters' data phases do)."""
        def run(name):
            def phase(step):
                if name == "data":
                    self._refill()
                    step.offsets = self.offs[self.up.k % CHUNK]  # the row the kernels read (counter == k)
                self.graphs[name].launch(self.cupy.cuda.get_current_stream())
                if name == "optimizer":
                    self.up.k += 1
            return phase
        return [(name, run(name)) for name, _ in self.OPS]


class PersistentGraphs(GpuGraphs):
    """Small models: the four persistent kernels of :mod:`sinelstm.graph_cuda`."""

    OPS = (("data", "_zero"), ("forward", "_forward"), ("backward", "_backward"), ("communication", "_allreduce"),
           ("optimizer", "_step"))

    def setup(self):
        from sinelstm.graph_cuda import kernels, threads_per_sequence

        cupy, up = self.cupy, self.up
        self.k = kernels(up.n)
        self.threads = threads_per_sequence(up.n)
        T, B, G, n = up.seqlen, up.batch, 4 * up.n, up.n
        self.duv = cupy.zeros(2 * G, cupy.float32)
        self.act = cupy.empty((B, T, G), cupy.float32)
        self.cs = cupy.empty((B, T, n), cupy.float32)
        self.hs = cupy.empty((B, T, n), cupy.float32)
        self.dy = cupy.empty((B, T), cupy.float32)

    # the recorded operations (each takes the capturing stream)
    def _zero(self, s):
        rt = self.cupy.cuda.runtime
        for buf in (self.up.flat.grads, self.duv, self.loss):
            rt.memsetAsync(buf.data.ptr, 0, buf.nbytes, s.ptr)

    def _forward(self, s):
        up = self.up
        self.k["lstm_forward"]((up.batch,), (self.threads,), self._common() + (
            np.int32(up.burn_in), np.float32(1.0 / up.batch), up.flat.params, self.act, self.cs, self.hs, self.dy,
            self.loss), stream=s)

    def _backward(self, s):
        up = self.up
        self.k["lstm_backward"]((up.batch,), (self.threads,), self._common() + (
            up.flat.params, up.flat.grads, self.duv, self.act, self.cs, self.hs, self.dy), stream=s)
        self.k["lstm_finish"]((1,), (256,), (up.flat.params, up.flat.grads, self.duv), stream=s)

    def _allreduce(self, s):
        if self.nccl is not None:
            self._allreduce_range(self.up.flat.grads, 0, self.up.flat.grads.size, s)

    def _step(self, s):
        up, f = self.up, self.up.flat
        m = f.m if up.adam else f.grads
        v = f.v if up.adam else f.grads
        self.k["optimizer_step"]((1,), (1024,), (
            f.params, f.grads, m, v, self.counter, np.float32(1.0), np.float32(up.clip),  # averaged: no scale
            np.float64(up.peak), np.float64(up.log_ratio), np.int32(up.decay), np.float64(up.beta1),
            np.float64(up.beta2), np.float32(up.eps), np.int32(1 if up.adam else 0)), stream=s)


def make_graph_updater(model, optimizer, iterator, series, device, *, recipe, lr, comm=None, **settings):
    """The compiled updater where its path serves the size, else the eager
    one (``path`` says which ran)."""
    path = compiled_path(device.xp is not np, model.n_units)
    if path == PATH_EAGER:
        settings["impl"] = "sinebench"
        if comm is not None:
            from sinelstm.mn import ChainerMNUpdater

            return ChainerMNUpdater(comm, model, optimizer, iterator, series, device, **settings)
        return Updater(model, optimizer, iterator, series, device, **settings)
    settings.pop("impl", None)
    settings.pop("schedule", None)
    return GraphUpdater(model, optimizer, iterator, series, device, recipe=recipe, lr=lr, comm=comm, **settings)
