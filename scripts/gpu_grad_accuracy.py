"""How far is one update's gradient from the exact one, per precision?

``verify`` compares whole runs of 20 updates, and with Adam at 1024 units
that comparison amplifies the last bits: there fp32 ``graph`` and the eager
fp32 path, equal but for the order of their sums, ended 5.0e-4 apart with the
quality recipe (results/h200x1-x3k-2026-11-28). So it cannot say whether a
precision is as exact as FP32. One gradient can: this takes ``graph``'s
first update in this process's precision (CUPY_TF32, SINEBENCH_3XTF32,
SINEBENCH_X3_K as the sweep sets them) up to the end of backward, and the
eager path's gradient of the same windows from the same weights in float32
and in float64 on the same GPU; it prints, as one JSON line, the recurrent
weights' gradient's error against float64 (the one the products'
precision reaches): norm of the difference over the norm, and largest
difference over largest magnitude, for graph and for eager float32 (its products as CuPy
makes them in this process: TF32 where CUPY_TF32=1).

    SINEBENCH_3XTF32=1 python scripts/gpu_grad_accuracy.py --units 1024 --batch 4096
"""
import argparse
import json
import os
from dataclasses import replace

import numpy as np

import sinelstm  # noqa: F401
import chainer
import cupy

from sinelstm import precision
from sinelstm.devices import parse_device_set
from sinelstm.graph import CHUNK
from sinelstm.impls import make_impl
from sinelstm.model import SineLSTM
from sinelstm.names import SINGLE_DEVICE
from sinelstm.recipes import RECIPES
from sinelstm.strategy import make_strategy
from sinelstm.updaters import Step
from sinelstm.verify import verify_config

NAME = "/l2/lateral/W"


def eager_grad(params, dtype, series, starts, device, cfg):
    """The eager path's gradient of ``NAME`` at ``params`` in ``dtype``."""
    model = SineLSTM(cfg.n_units)
    for name, p in model.namedparams():
        p.array = params[name].astype(dtype)
    model.to_device(device)
    impl = make_impl("sinebench", series.astype(dtype), device, cfg.recipe.seqlen, cfg.recipe.burn_in)
    with chainer.using_device(device):
        loss = impl.loss(model, impl.load(starts))
        model.cleargrads()
        loss.backward()
    return cupy.asnumpy(dict(model.namedparams())[NAME].grad).astype(np.float64)


def error(g, exact):
    return {"norm": float(np.linalg.norm(g - exact) / np.linalg.norm(exact)),
            "max": float(np.abs(g - exact).max() / np.abs(exact).max())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--recipe", default="article")
    args = ap.parse_args()
    cfg = replace(verify_config(impl="graph", n_devices=1, n_units=args.units, recipe=RECIPES[args.recipe],
                                optimizer="adam", precision=precision.process_precision()),
                  batchsize=args.batch)
    strategy = make_strategy(SINGLE_DEVICE, parse_device_set("0"), "graph")
    with chainer.using_config("type_check", False):
        up = strategy.make_updater(cfg)
        params = {name: cupy.asnumpy(p.array).astype(np.float64) for name, p in up.model.namedparams()}
        step, phases = Step(), dict(up.phases())
        for name in ("data", "forward", "backward"):  # the optimizer would assemble the rest and step
            phases[name](step)
        cupy.cuda.Device().synchronize()
        g = up._gpu
        starts = cupy.asnumpy(g.offs[int(g.counter.get()[0]) % CHUNK])
        graph = cupy.asnumpy(up.flat.view(up.flat.grads, NAME)).astype(np.float64)
        series = cupy.asnumpy(g.series).astype(np.float64)
        T = cfg.recipe.seqlen
        gathered = cupy.asnumpy(g.x1[0]).reshape(T, -1)
        assert np.array_equal(gathered, series[starts[None, :] + np.arange(T)[:, None]]), "windows differ"
        exact = eager_grad(params, np.float64, series, starts, up.device, cfg)
        fp32 = eager_grad(params, np.float32, series, starts, up.device, cfg)
    print(json.dumps({"precision": cfg.precision, "x3_k": os.environ.get("SINEBENCH_X3_K", "default"),
                      "units": args.units, "batch": args.batch, "recipe": args.recipe,
                      "graph": error(graph, exact), "eager_f32": error(fp32, exact)}), flush=True)


if __name__ == "__main__":
    main()
