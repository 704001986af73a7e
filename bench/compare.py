"""This machine's CPU beside another machine's GPU (``sinebench report DIR
--compare OTHER``): a CPU-only user cannot measure a GPU, but can set their
CPU's times beside a published GPU sweep's at the sizes both ran, with the
same implementation, recipe and window."""
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench import facts
from bench.store import ResultStore
from sinelstm.names import SINGLE_DEVICE

MATCH = ["impl", "recipe", "seqlen", "batchsize", "n_units"]


@dataclass(frozen=True)
class Compared:
    name: str  # the other folder's name
    sweep: facts.Sweep
    gpu: str | None  # its single GPU's device spec
    card: str  # the GPU's name, or "GPU"


def load(folder) -> Compared:
    sw = facts.sweep(ResultStore(folder).load())
    gpu = facts.one_gpu(sw.main)
    cards = sw.ok.loc[sw.ok["devices"] == gpu, "gpu_name"].dropna().unique() if gpu else []
    return Compared(Path(folder).name, sw, gpu, str(cards[0]) if len(cards) else "GPU")


def cpu_vs_gpu(local: facts.Sweep, other: Compared) -> pd.DataFrame:
    """This machine's CPU ms over the other's one-GPU ms (> 1: the GPU is
    faster), batch x n_units, at the sizes both ran alike."""
    if other.gpu is None:
        return pd.DataFrame()
    mine = local.main[(local.main["devices"] == "cpu") & (local.main["strategy"] == SINGLE_DEVICE)]
    theirs = other.sweep.main[(other.sweep.main["devices"] == other.gpu)]
    both = mine.merge(theirs, on=MATCH, suffixes=("_cpu", "_gpu"))
    if both.empty:
        return pd.DataFrame()
    both["speedup"] = both["ms_cpu"] / both["ms_gpu"]
    return both.pivot_table(index="batchsize", columns="n_units", values="speedup")


def sizes_hint(local: facts.Sweep, other: Compared) -> str:
    """The sweep commands that would measure this CPU at the other's sizes,
    one per recipe (each with the sizes it ran); empty when it has none."""
    o = other.sweep.main
    return "; ".join(
        f"sinebench sweep --devices cpu --recipe {recipe} --batchsize "
        f"{','.join(map(str, sorted(g['batchsize'].unique())))} --units "
        f"{','.join(map(str, sorted(g['n_units'].unique())))}"
        for recipe, g in o.groupby("recipe"))
