"""The lanes of the captured cuBLAS update (sinelstm.graph_gemm), and its
end with several ranks (the gradient's all-reduces, the optimizer's step),
ordered as they must be, checked without a GPU: the update is recorded
against stand-ins for CUDA streams, events, cuBLAS, NCCL and the kernels,
which keep the order a graph capture would (each operation after the one
before it on its stream and after the events its stream waited for), and
every operation that reads another's output must come after it."""
from types import SimpleNamespace

import numpy as np
import pytest

from sinelstm import graph_gemm

T, B, N = 4, 6, 2  # steps, sequences, units: three lanes of two sequences
G = 4 * N


class Ptr(SimpleNamespace):
    """A device pointer: a buffer's name and a byte offset."""

    def __add__(self, nbytes):
        return Ptr(name=self.name, at=self.at + nbytes)


class Buf:
    """A device array by element index, so that slices know their offset."""

    def __init__(self, name, shape, index=None):
        self.name, self.index = name, np.arange(int(np.prod(shape))).reshape(shape) if index is None else index

    def __getitem__(self, key):
        return Buf(self.name, None, self.index[key])

    @property
    def size(self):
        return self.index.size

    @property
    def data(self):
        return SimpleNamespace(ptr=Ptr(name=self.name, at=4 * int(self.index.flat[0])))


class Recorder:
    """What was captured: operations with the operations they come after."""

    def __init__(self):
        self.ops = []  # (stream, what, args, deps)

    def run(self, stream, what, args):
        self.ops.append((stream, what, args, ({stream.last} | stream.waits) - {None}))
        stream.last, stream.waits = len(self.ops) - 1, set()

    def before(self, a, b) -> bool:
        """Does operation a come before operation b?"""
        todo, seen = [b], set()
        while todo:
            for d in self.ops[todo.pop()][3]:
                if d == a:
                    return True
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return False

    def find(self, what, buf=None, at=None) -> list:
        return [i for i, (_, w, args, _) in enumerate(self.ops) if w == what and (buf is None or any(
            isinstance(x, Ptr) and x.name == buf and x.at == 4 * at for x in _pointers(args)))]


def _pointers(args):
    return [a.data.ptr if isinstance(a, Buf) else a for a in args]


class Stream:
    def __init__(self, rec, name):
        self.rec, self.name, self.last, self.waits = rec, name, None, set()
        self.ptr = self  # what the code hands NCCL and the runtime: the stream itself here

    def wait_event(self, event):
        self.waits |= event.deps


class Event:
    def record(self, stream):
        self.deps = {stream.last} | stream.waits


class Blas:
    def __init__(self, stream):
        self.stream = stream

    def gemm(self, *args, **kwargs):
        self.stream.rec.run(self.stream, "gemm", args)

    gemm_split_k = gemm


class Nccl:
    """NCCL's calls, recorded on the stream they are given."""

    def allReduce(self, send, recv, count, dtype, op, stream):  # noqa: N802 (NCCL's names)
        stream.rec.run(stream, "allReduce", (send, recv, count))


def record(grad_rows: int, lanes: int = 3, ranks: int = 1, clip: float = 0.0):
    """The forward and backward of an update in ``lanes`` lanes, with the
    weights' gradient in parts of ``grad_rows`` rows (0: one product); with
    several ``ranks``, the backward with its all-reduces and the
    optimizer's step after it."""
    rec = Recorder()
    s = Stream(rec, "s")
    g = object.__new__(graph_gemm.GemmGraphs)
    layout = {"/l2/upward/W": 0, "/l1/W": G * N, "/l2/lateral/W": G * N + 2 * N, "/l3/W": 2 * G * N + 2 * N}
    size = 3 * G * N
    flat = SimpleNamespace(start=layout.__getitem__, params=Buf("params", (size,)), grads=Buf("grads", (size,)),
                           m=Buf("m", (size,)), v=Buf("v", (size,)))
    g.up = SimpleNamespace(seqlen=T, batch=B, n=N, burn_in=0, flat=flat, clip=clip, adam=True,
                           peak=1e-3, log_ratio=0.0, decay=0, beta1=0.9, beta2=0.999, eps=1e-8)
    runtime = SimpleNamespace(memcpyDeviceToDevice=3,
                              memcpyAsync=lambda dst, src, nbytes, kind, stream: rec.run(stream, "memcpy", (dst, src)))
    g.cupy = SimpleNamespace(cuda=SimpleNamespace(Event=lambda **kw: Event(), runtime=runtime))
    g.k = {name: (lambda name: lambda grid, block, args, stream: rec.run(stream, name, args))(name)
           for name in graph_gemm._NAMES}
    g.capture_stream, g.side, g.events, g.x3, g.nccl = s, Stream(rec, "side"), [], False, None
    g.blas, g.side_blas = Blas(s), Blas(g.side)
    g.rows = graph_gemm.lane_rows(B, lanes)
    g.lane_streams = [s] + [Stream(rec, f"lane{i}") for i in range(1, lanes)]
    g.lane_blas = [g.blas] + [Blas(st) for st in g.lane_streams[1:]]
    g.grad_rows, g.dh_splits = grad_rows, 1
    g.act, g.cs, g.hs = Buf("act", (T, B, G)), Buf("cs", (T, B, N)), Buf("hs", (T, B, N))
    g.hx, g.dgx = g.hs, g.act
    g.x1, g.tgt, g.dy = Buf("x1", (2, T * B)), Buf("tgt", (T * B,)), Buf("dy", (T * B,))
    g.uv, g.small, g.loss = Buf("uv", (2 * G,)), Buf("small", (2 * G + N + 1,)), Buf("loss", (1,))
    g.dhn, g.dc = Buf("dhn", (1, B, N)), Buf("dc", (B, N))  # dh in one part (setup sizes it so)
    g.counter, g.norm = Buf("counter", (1,)), Buf("norm", (1,))
    g._forward(s)
    if ranks == 1:
        g._backward(s)
        return rec, g
    g.nccl = Nccl()
    g._backward_overlapped(s)
    g._step(s)
    return rec, g


def check(rec, g):
    """Every read after the write it reads; every lane back on the capturing
    stream before what follows on it."""
    uv = rec.find("gemm")[0]  # the update's first product: [u v], read by every forward step
    loss = rec.find("gemm_output_loss")
    assert len(loss) == 1
    for r0, _ in g.rows:
        for t in range(T):
            fwd = rec.find("gemm_forward_step", "act", (t * B + r0) * G)
            bwd = rec.find("gemm_backward_step", "act", (t * B + r0) * G)
            assert len(fwd) == len(bwd) == 1, (t, r0)
            assert rec.before(uv, fwd[0]), ("[u v] before the forward step", t, r0)
            assert rec.before(fwd[0], loss[0]), ("the forward's last step before the loss", t, r0)
            assert rec.before(loss[0], bwd[0]), ("dy (the loss kernel's) before the backward step", t, r0)
            readers = [i for i in rec.find("gemm") if _reads_steps_gradient(rec.ops[i][2], t)]
            assert bool(readers) == (t > 0), ("dW reads steps 1 to T - 1", t, readers)  # step 0: no recurrent product
            assert all(rec.before(bwd[0], i) for i in readers), ("gate gradients before dW", t, r0)
    ends = rec.find("gemm", "small", 2 * G)  # after the loop, on the capturing stream: reads every step's act, hs
    assert ends and all(rec.before(i, ends[0]) for i in rec.find("gemm_backward_step")), "lanes joined before the end"


def _reads_steps_gradient(args, t) -> bool:
    """A product of the recurrent weights' gradient over steps that include t
    (its B operand is act from step t0, K rows: steps t0 to t0 + K/B)."""
    m, n, k, a, lda, b = args[2:8]
    if not (isinstance(b, Ptr) and b.name == "act" and m == N and n == G):
        return False
    t0 = b.at // 4 // (B * G)
    return t0 <= t < t0 + k // B


@pytest.mark.parametrize("grad_rows,lanes", [(0, 3), (B, 3), (2 * B, 2), (0, 1)])
def test_lanes_read_only_what_is_written_before(grad_rows, lanes):
    rec, g = record(grad_rows, lanes)
    check(rec, g)
    assert g.plan == f"{lanes} lane{'s' if lanes > 1 else ''}, dh in 1 part"  # what a run's path names


@pytest.mark.parametrize("broken", ["_gather", "_spread"])
def test_the_check_catches_a_lane_left_unjoined(monkeypatch, broken):
    monkeypatch.setattr(graph_gemm.GemmGraphs, broken, lambda self, s: None)
    with pytest.raises(AssertionError):
        check(*record(0))


def test_the_check_catches_a_part_that_waits_for_one_lane(monkeypatch):
    fork = graph_gemm.GemmGraphs._fork
    monkeypatch.setattr(graph_gemm.GemmGraphs, "_fork", lambda self, *streams: fork(self, streams[0]))
    with pytest.raises(AssertionError, match="gate gradients before dW"):
        check(*record(B))


@pytest.fixture
def fake_nccl(monkeypatch):
    """The all-reduce without CuPy's NCCL."""
    monkeypatch.setattr(graph_gemm.GemmGraphs, "_allreduce_range", lambda self, buf, start, stop, stream: Nccl(
        ).allReduce(buf.data.ptr + 4 * start, buf.data.ptr + 4 * start, stop - start, 7, 4, stream))


def check_step(rec, g):
    """The recurrent weights' gradient averaged over ranks after every
    product that writes it, and the whole gradient (with its norm, where
    clipped) before the optimizer reads it; the count after the step."""
    lat = g.up.flat.start("/l2/lateral/W")
    dw = [i for i in rec.find("gemm") if rec.ops[i][2][9] == Ptr(name="grads", at=4 * lat)]
    lateral = rec.find("allReduce", "grads", lat)
    assert dw and len(lateral) == 1 and all(rec.before(i, lateral[0]) for i in dw), "every dW product before its all-reduce"
    opt, end = rec.find("gemm_optimizer"), rec.find("gemm_count")
    assert len(opt) == len(end) == 1 and rec.before(opt[0], end[0]), "the step before the count"
    assert rec.before(lateral[0], opt[0]), "the averaged gradient before the step"
    rest = [rec.find("gemm_finish")[0], rec.find("memcpy")[0], rec.find("allReduce", "small", 0)[0]]
    assert all(rec.before(r, opt[0]) for r in rest), "the rest of the gradient before the step"
    norm = rec.find("gemm_sqnorm")
    assert len(norm) == bool(g.up.clip), "the norm where the gradient is clipped"
    assert all(rec.before(r, n) and rec.before(n, opt[0]) for n in norm for r in rest + lateral), "the norm's order"


@pytest.mark.parametrize("clip", [0.0, 1.0])
def test_the_step_reads_only_what_is_written_before(fake_nccl, clip):
    check_step(*record(0, lanes=1, ranks=2, clip=clip))
    check_step(*record(B, lanes=2, ranks=2, clip=clip))  # gradient in parts, two lanes


def test_the_check_catches_a_step_before_the_sum(fake_nccl, monkeypatch):
    """Backward's last join (the capturing stream waits for the side
    stream's all-reduce) left out."""
    monkeypatch.setattr(graph_gemm.GemmGraphs, "_join", lambda self: SimpleNamespace(deps=set()))
    with pytest.raises(AssertionError, match="averaged gradient before the step"):
        check_step(*record(0, lanes=1, ranks=2))
