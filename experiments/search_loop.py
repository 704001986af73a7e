"""The recipe search's own training loop: like :mod:`sinelstm.train`, but
with what only the search tried -- partly closed-loop training (the last
``free_run`` inputs of each window replaced by the model's own predictions),
a loop that keeps going for ``after_hit`` updates after the first hit to see
whether a model stays there -- and nothing it did not need (strategies,
devices, per-update timers). Kept here, beside the evidence it produced;
the winners live in :mod:`sinelstm.recipes`."""
from dataclasses import dataclass

import numpy as np

import sinelstm  # noqa: F401
from sinelstm.quality import closed_loop_fast, lstm_params
from sinelstm.recipes import Recipe


@dataclass(frozen=True)
class SearchRecipe(Recipe):
    """A recipe with the search's extra knob. ``free_run > 0``: the last
    ``free_run`` inputs of each window are the model's own predictions (no
    gradient through them), the targets still the true series. It did not
    help (experiments/README.md)."""

    free_run: int = 0
    batchsize: int = 10  # the global batch the search ran it at

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.free_run < self.seqlen:
            raise ValueError(f"free_run must be in [0, seqlen), got {self.free_run}")


def recipe_loss(model, xs, ts, recipe: Recipe):
    """Per-step MSE summed over the steps after the burn-in (as the
    sinebench implementation's loss in :mod:`sinelstm.impls`)."""
    import chainer.functions as F

    ys = model.forward_sequence(xs)
    b = recipe.burn_in
    return F.mean_squared_error(ys[b:], ts[b:]) * (ys.shape[0] - b)


def free_run_inputs(p: dict, xs: np.ndarray, start: int) -> np.ndarray:
    """Windows ``xs`` (T, B) with inputs from step ``start`` on replaced by the
    model's own predictions: teacher-forced up to ``start``, then each
    prediction fed back as the next input, as in :func:`closed_loop_params`
    but for a batch of windows. No gradient: the result is data."""
    T, B = xs.shape
    n = p["w1"].shape[0]
    u = p["w_up"] @ p["w1"]
    v = p["w_up"] @ p["b1"] + p["b_up"]
    half = np.ones(4 * n)
    half[n:] = 0.5
    w_lat_t = (p["w_lat"] * half[:, None]).T
    out = np.array(xs, dtype=xs.dtype, copy=True)
    h, c = np.zeros((B, n)), np.zeros((B, n))
    a, i, f, o = slice(0, n), slice(n, 2 * n), slice(2 * n, 3 * n), slice(3 * n, 4 * n)
    for t in range(T - 1):
        g = np.tanh((out[t, :, None] * u + v) * half + h @ w_lat_t)
        c = 0.5 * (g[:, a] * (g[:, i] + 1.0) + (g[:, f] + 1.0) * c)
        h = 0.5 * (g[:, o] + 1.0) * np.tanh(c)
        if t + 1 >= start:
            out[t + 1] = h @ p["w3"] + p["b3"]
    return out


def fit(recipe, n_units: int = 32, seed: int = 0, batchsize: int | None = None, target: float = 0.1,
        eval_every: int = 25, max_updates: int = 4000, max_seconds: float = 60.0, after_hit: int | None = 0,
        data=None, device="@numpy") -> dict:
    """Train ``SineLSTM(n_units, seed)`` by ``recipe`` and evaluate it closed
    loop every ``eval_every`` updates, until the budget runs out or, when
    ``after_hit`` is not None, ``after_hit`` updates after the first
    evaluation at or below ``target``. Seconds count training only, not
    evaluations. Returns the curve and summary numbers; ``"diverged"`` marks a
    non-finite loss or RMSE."""
    import time

    import chainer
    from chainer.optimizer_hooks import GradientClipping

    from sinelstm.data import SineData
    from sinelstm.iterator import WindowIterator, window_indices
    from sinelstm.model import SineLSTM
    from sinelstm.recipes import lr_at

    data = data or SineData()
    batchsize = batchsize or getattr(recipe, "batchsize", 10)
    model = SineLSTM(n_units, seed=seed)
    dev = chainer.get_device(device)
    model.to_device(dev)
    opt = chainer.optimizers.Adam(alpha=lr_at(recipe, 0))
    opt.setup(model)
    if recipe.grad_clip is not None:
        opt.add_hook(GradientClipping(recipe.grad_clip))
    it = WindowIterator(data.n_train, batchsize, recipe.seqlen, seed=seed)
    train = dev.send(data.split()[0])
    xp = dev.xp
    curve, hit_update, hit_s, status = [], None, None, "not_reached"
    train_s = 0.0
    for update in range(1, max_updates + 1):
        t0 = time.perf_counter()
        opt.alpha = lr_at(recipe, update - 1)
        window = train[window_indices(dev.send(next(it)), recipe.seqlen, xp)]
        xs = window[:-1]
        if getattr(recipe, "free_run", 0):
            from chainer.backends.cuda import to_cpu
            xs = dev.send(free_run_inputs(lstm_params(model), to_cpu(xs), recipe.seqlen - recipe.free_run))
        loss = recipe_loss(model, xs, window[1:], recipe)
        model.cleargrads()
        loss.backward()
        opt.update()
        loss_value = float(loss.array)
        train_s += time.perf_counter() - t0
        if not np.isfinite(loss_value):
            status = "diverged"
            break
        if update % eval_every == 0 or update == max_updates:
            rmse = closed_loop_fast(model, data).rmse_all
            curve.append((update, train_s, loss_value, rmse))
            if not np.isfinite(rmse):
                status = "diverged"
                break
            if hit_update is None and rmse <= target:
                hit_update, hit_s, status = update, train_s, "reached"
            if hit_update is not None and after_hit is not None and update >= hit_update + after_hit:
                break
        if train_s > max_seconds:
            break
    rmses = [r for *_, r in curve]
    after = [r for u, _, _, r in curve if hit_update is not None and u >= hit_update]
    return {
        "status": status, "updates_to_target": hit_update, "seconds_to_target": hit_s,
        "updates": curve[-1][0] if curve else 0, "train_s": train_s,
        "final_rmse": rmses[-1] if rmses else float("nan"), "best_rmse": min(rmses) if rmses else float("nan"),
        "stayed": bool(after) and max(after) <= target, "max_after_hit": max(after) if after else float("nan"),
        "curve": curve, "model": model,
    }
