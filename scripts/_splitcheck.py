import sys
import sinelstm  # noqa
from sinelstm.config import TrainConfig, Budget
from sinelstm.devices import parse_device_set
from sinelstm.recipes import RECIPES
from sinelstm.strategy import make_strategy
for B in map(int, sys.argv[1:]):
    cfg = TrainConfig(n_units=1024, batchsize=B, recipe=RECIPES["article"], impl="graph")
    up = make_strategy("single-process", parse_device_set("0"), "graph").make_updater(cfg)
    up.update(); up.synchronize()
    g = up._gpu
    print("B", B, "dh_splits", g.dh_splits, flush=True)
    del up, g
