"""How exact one gradient is: an implementation's first update, up to the
end of backward, against the eager path's gradient of the same windows from
the same weights in float64 on the same device.

``verify`` compares whole runs of 20 updates, and where Adam's
normalization meets a wide model that comparison amplifies the last bits:
at 1024 units, with the quality recipe, fp32 ``graph`` and the eager fp32
path, which differ only in the order of their sums, ended 5.0e-4 apart
(tolerance 1e-5; one H200, results/h200x1-x3k-2026-11-28). It tells
whether two paths compute the same update, not how exactly either does.
One gradient against float64 does: its error is the products' rounding
(and a tensor core's truncation) before anything amplifies it. It is
reported for the recurrent weights, the one matrix every recurrent product
reaches (the forward chain, the ``dh`` chain and the weights' own
product); the compiled GPU update assembles the others after backward.
The yardstick beside it is the eager path's own error in this process's
precision (fp32 unless CUPY_TF32=1).
"""
from dataclasses import dataclass

import numpy as np

import chainer

from sinelstm.graph import GraphUpdater
from sinelstm.impls import make_impl
from sinelstm.model import SineLSTM
from sinelstm.updaters import Step

NAME = "/l2/lateral/W"
EAGER = "sinebench"


@dataclass
class GradientError:
    impl: float  # |g - g64| / |g64| (2-norms) of the implementation's gradient
    eager: float | None  # the same for the eager path in float32 (this process's precision), if asked


def relative_error(g: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(g - exact) / np.linalg.norm(exact))


def first_gradient(updater) -> tuple:
    """Run ``updater``'s first update to the end of backward: its windows'
    offsets and NAME's gradient (float64, on the host)."""
    step, phases = Step(), dict(updater.phases())
    for name in ("data", "forward", "backward"):
        phases[name](step)
    if isinstance(updater, GraphUpdater):
        grad = updater.flat.view(updater.flat.grads, NAME)
    else:
        grad = dict(updater.model.namedparams())[NAME].grad
    return np.asarray(chainer.backends.cuda.to_cpu(step.offsets)), _host(grad)  # to_cpu waits for the device


def eager_gradient(params: dict, dtype, series: np.ndarray, offsets: np.ndarray, updater) -> np.ndarray:
    """The eager path's gradient of NAME at ``params``, in ``dtype``, on
    ``updater``'s device and windows (length and burn-in)."""
    device = updater.device
    model = SineLSTM(updater.model.n_units)
    for name, p in model.namedparams():
        p.array = params[name].astype(dtype)
    model.to_device(device)
    impl = make_impl(EAGER, series.astype(dtype), device, updater.iterator.seqlen, updater.burn_in)
    with chainer.using_device(device):
        loss = impl.loss(model, impl.load(offsets))
        model.cleargrads()
        loss.backward()
    return _host(dict(model.namedparams())[NAME].grad)


def gradient_error(cfg, strategy, with_eager: bool = True) -> GradientError:
    """The first gradient's error of ``cfg.impl`` run by ``strategy`` (one
    device), and (``with_eager``) of the eager path in float32 beside it."""
    with chainer.using_config("type_check", False):
        updater = strategy.make_updater(cfg)
        params = {name: _host(p.array) for name, p in updater.model.namedparams()}
        offsets, grad = first_gradient(updater)
        series = np.asarray(cfg.data.split()[0], np.float64)
        exact = eager_gradient(params, np.float64, series, offsets, updater)
        eager = eager_gradient(params, np.float32, series, offsets, updater) if with_eager else None
    return GradientError(impl=relative_error(grad, exact),
                         eager=None if eager is None else relative_error(eager, exact))


def _host(a) -> np.ndarray:
    return np.asarray(chainer.backends.cuda.to_cpu(a), np.float64)
