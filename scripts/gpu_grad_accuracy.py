"""One update's gradient against float64 at a batch of your choosing
(sinelstm.exactness; ``verify`` does it at its batch of 8): the compiled
update on GPU 0 in this process's precision (CUPY_TF32, SINEBENCH_3XTF32,
SINEBENCH_X3_K as the sweep sets them), and the eager path in float32
beside it, as one JSON line.

    SINEBENCH_3XTF32=1 python scripts/gpu_grad_accuracy.py --units 1024 --batch 4096
"""
import argparse
import json
import os
from dataclasses import asdict, replace

from sinelstm import precision
from sinelstm.devices import parse_device_set
from sinelstm.exactness import gradient_error
from sinelstm.names import SINGLE_DEVICE
from sinelstm.recipes import RECIPES
from sinelstm.strategy import make_strategy
from sinelstm.verify import verify_config


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--recipe", default="article")
    args = ap.parse_args()
    cfg = replace(verify_config(impl="graph", n_devices=1, n_units=args.units, recipe=RECIPES[args.recipe],
                                precision=precision.process_precision()), batchsize=args.batch)
    err = gradient_error(cfg, make_strategy(SINGLE_DEVICE, parse_device_set("0"), "graph"))
    print(json.dumps({"precision": cfg.precision, "x3_k": os.environ.get("SINEBENCH_X3_K", "default"),
                      "units": args.units, "batch": args.batch, "recipe": args.recipe, **asdict(err)}), flush=True)


if __name__ == "__main__":
    main()
