"""How good a trained model is: one-step error and closed-loop prediction."""
from dataclasses import dataclass

import numpy as np

import sinelstm  # noqa: F401
import chainer

from sinelstm.data import SineData
from sinelstm.iterator import window_indices


def one_step_mse(model, data: SineData, seqlen: int, series_on_device=None) -> float:
    """Mean squared error of the next-value prediction over the test split.

    Each test point is predicted from the ``seqlen`` values before it, read
    from a zero state: the situation the model was trained in. All test
    windows run as one batch.
    """
    xp = model.xp
    series = series_on_device if series_on_device is not None else model.device.send(data.series())
    offsets = xp.arange(data.n_train - seqlen, data.length - seqlen, dtype=np.int64)
    window = series[window_indices(offsets, seqlen, xp)]
    with chainer.no_backprop_mode(), chainer.using_config("train", False):
        ys = model.forward_sequence(window[:-1])
    err = ys.array[-1] - window[-1]
    return float((err * err).mean())


@dataclass
class ClosedLoop:
    truth: np.ndarray  # the whole series
    prediction: np.ndarray  # NaN over the warm-up part
    warmup: int
    rmse_50: float
    rmse_all: float


def closed_loop(model, data: SineData, warmup_fraction: float = 0.1) -> ClosedLoop:
    """Warm the state on the first ``warmup_fraction`` of the series, then
    feed each prediction back as the next input, to the end of the series.
    Runs on a CPU copy of the model: 900 sequential tiny steps."""
    cpu = model.copy(mode="copy")
    cpu.to_device("@numpy")
    series = data.series()
    warmup = int(len(series) * warmup_fraction)
    pred = np.full_like(series, np.nan)
    cpu.reset_state()
    with chainer.no_backprop_mode(), chainer.using_config("train", False):
        for i in range(warmup):
            y = cpu(series[i : i + 1].reshape(1, 1))
        for i in range(warmup, len(series)):
            pred[i] = float(y.array[0, 0])
            y = cpu(pred[i : i + 1].reshape(1, 1))
    cpu.reset_state()
    err = pred[warmup:] - series[warmup:]
    return ClosedLoop(
        truth=series,
        prediction=pred,
        warmup=warmup,
        rmse_50=float(np.sqrt(np.mean(err[:50] ** 2))),
        rmse_all=float(np.sqrt(np.mean(err**2))),
    )
