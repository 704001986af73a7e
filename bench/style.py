"""One visual language for every chart: each device set and strategy has one
colour and one marker, the article's implementation is a dashed line (hollow
marker), the PyTorch reference's dotted (dash-dotted when captured as a CUDA
graph), and every speedup map shares one fixed, symmetric colour scale. A
reader who learned that the CPU is the red square in one chart finds it so
in all of them."""
import re

import matplotlib.colors as mcolors
import numpy as np

from sinelstm.names import ARTICLE_IMPL, STRATEGIES, TORCH_DDP, TORCH_DDP_STRATEGY, TORCH_GRAPH, TORCH_IMPL

# (kind, strategy) -> (colour, marker); kind is cpu, gpu, cpus (replicas), gpus.
_BASE = {
    ("cpu", ""): ("#d62728", "s"),
    ("gpu", ""): ("#1f77b4", "o"),
    ("gpus", STRATEGIES[0]): ("#2ca02c", "^"),
    ("gpus", STRATEGIES[1]): ("#ff7f0e", "D"),
    ("cpus", STRATEGIES[0]): ("#9467bd", "v"),
    ("cpus", STRATEGIES[1]): ("#8c564b", "P"),
    ("gpus", TORCH_DDP_STRATEGY): ("#e377c2", "h"),
    ("cpus", TORCH_DDP_STRATEGY): ("#bcbd22", "p"),
}
# Line style of each implementation other than sinebench's (solid).
IMPL_LINE = {ARTICLE_IMPL: "--", TORCH_IMPL: ":", TORCH_DDP: ":", TORCH_GRAPH: "-."}
OTHER = ("#7f7f7f", "X")
# A compared machine's series: the same colours, lighter.
COMPARED_SUFFIX = " — "
SPEEDUP_LIMIT = 4  # log2: the maps' scale runs from 1/16x to 16x


def _parse(label: str) -> tuple:
    """(kind, strategy, n, impl) from a names.series_label; impl is "" for sinebench's."""
    label, _, impl = label.split(COMPARED_SUFFIX)[0].partition(" · ")
    m = re.match(r"^(\d+) (GPUs?|CPU replicas)(?: \((.+)\))?$", label)
    if label == "CPU":
        return "cpu", "", 1, impl
    if m is None:
        return "other", "", 1, impl
    n = int(m.group(1))
    if m.group(2).startswith("GPU"):
        return ("gpu" if n == 1 else "gpus"), (m.group(3) or "") if n > 1 else "", n, impl
    return "cpus", m.group(3) or "", n, impl


def colour(label: str) -> str:
    kind, strategy, n, _ = _parse(label)
    c, _ = _BASE.get((kind, strategy), OTHER)
    if n > 2:  # more devices of the same strategy: darker
        c = mcolors.to_hex(np.array(mcolors.to_rgb(c)) * 0.65)
    if COMPARED_SUFFIX in label:
        c = mcolors.to_hex(0.55 * np.array(mcolors.to_rgb(c)) + 0.45)
    return c


def marker(label: str) -> str:
    kind, strategy, _, _ = _parse(label)
    return _BASE.get((kind, strategy), OTHER)[1]


def line(label: str) -> dict:
    """Keyword arguments of ``ax.plot`` for a series."""
    impl = _parse(label)[3]
    c = colour(label)
    return {"color": c, "marker": marker(label), "ls": IMPL_LINE.get(impl, "-"),
            "mfc": "white" if impl == ARTICLE_IMPL else c, "mec": c}


def order(labels) -> list:
    """Series in one order everywhere: CPU, 1 GPU, then more devices."""
    rank = {"cpu": 0, "gpu": 1, "gpus": 2, "cpus": 3, "other": 4}

    def key(label):
        kind, strategy, n, impl = _parse(label)
        return rank[kind], n, strategy, impl, COMPARED_SUFFIX in label, label
    return sorted(set(labels), key=key)


def speedup_ticks() -> tuple:
    """(log2 positions, labels) of the maps' colour bar: 1/16x ... 16x."""
    pos = np.arange(-SPEEDUP_LIMIT, SPEEDUP_LIMIT + 1)
    return pos, [f"1/{2 ** -p}×" if p < 0 else f"{2 ** p}×" for p in pos]
