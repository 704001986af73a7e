"""The overhead ladder: every device set and implementation of a sweep by
its fixed cost per update, with its rate, and where each implementation's
one GPU starts to beat the CPU.

Why it is its own fact: the report's crossover is not a property of GPUs but
of an update's fixed cost (framework calls, kernel launches) on each side.
Set side by side, implementations with less overhead per update (the PyTorch
reference, a captured CUDA graph) show how far the crossover moves when that
cost shrinks. Pure DataFrame arithmetic, like :mod:`bench.facts`; the cost
model is :func:`bench.analysis.fit_cost_model`'s, the crossover
:func:`bench.analysis.crossover_flops` where both fits are good and the
measured cells (:func:`bench.crossover.measured`) where they are not.
"""
from dataclasses import dataclass

import pandas as pd

from bench.analysis import CostModel, crossover_flops, fit_cost_model
from bench.crossover import Measured, measured
from sinelstm.names import CPU_COUNTERPART, SINGLE_DEVICE, series_label

RUNG = ["seqlen", "impl", "devices", "strategy"]


@dataclass(frozen=True)
class Rung:
    """One device set and implementation at one window length."""

    label: str  # names.series_label
    impl: str
    devices: str
    strategy: str
    seqlen: int
    smallest: tuple  # (batch, n_units, ms per update) at the fewest FLOPs per update
    largest: tuple  # (batch, n_units, FLOP/s) at the most
    sizes: int  # distinct FLOPs per update it ran
    fit: CostModel | None

    @property
    def fitted(self) -> bool:
        """A fit good enough to read a fixed cost and a rate off."""
        return self.fit is not None and self.fit.drawn

    @property
    def fixed_ms(self) -> float:
        """The fit's intercept where it is good, else the time of the
        smallest update it ran (which also pays for some arithmetic)."""
        return self.fit.fixed_ms if self.fitted else self.smallest[2]

    @property
    def flops_per_s(self) -> float:
        """The fit's rate where it is good, else the rate reached at its
        largest update (its fixed cost included: a lower bound)."""
        return self.fit.gflops_per_s * 1e9 if self.fitted else self.largest[2]


def _bound(g: pd.DataFrame, peaks: dict | None) -> float | None:
    """GFLOP/s no fit of these rows may exceed (as analysis.cost_models)."""
    first = g.iloc[0]
    peak = (peaks or {}).get("gpu" if first["is_gpu"] else "cpu")
    return peak * (first["n_devices"] if first["is_gpu"] else 1) / 1e9 if peak else None


def rungs(agg: pd.DataFrame, peaks: dict | None = None) -> list:
    """Every (window length, implementation, device set) of ``agg``
    (:func:`bench.analysis.aggregate`), cheapest fixed cost first within a
    window length, shorter windows first."""
    out = []
    for (seqlen, impl, devices, strategy), g in agg.dropna(subset=["ms", "flops"]).groupby(RUNG):
        label = series_label(devices, strategy, impl)
        small, large = g.loc[g["flops"].idxmin()], g.loc[g["flops"].idxmax()]
        out.append(Rung(label, impl, devices, strategy, int(seqlen),
                        (int(small["batchsize"]), int(small["n_units"]), float(small["ms"])),
                        (int(large["batchsize"]), int(large["n_units"]), float(large["flops"] / large["ms"] * 1e3)),
                        int(g["flops"].nunique()), fit_cost_model(g, label, _bound(g, peaks))))
    return sorted(out, key=lambda r: (r.seqlen, r.fixed_ms, r.label))


@dataclass(frozen=True)
class Crossing:
    """Where one GPU of ``impl`` starts to beat the CPU running ``cpu_impl``
    (the same implementation, or what its user would run on a CPU)."""

    impl: str
    cpu_impl: str
    seqlen: int
    gpu: Rung
    cpu: Rung
    model_flops: float | None  # by both fits: None if either is not good; inf: never; 0: always
    cells: Measured | None  # from the sizes both ran

    @property
    def by_model(self) -> bool:
        return self.model_flops is not None


def crossings(agg: pd.DataFrame, ladder: list) -> list:
    """One :class:`Crossing` per window length and implementation that ran on
    one GPU (the lowest-numbered) and, itself or its CPU counterpart, on the
    CPU."""
    singles = [r for r in ladder if r.strategy == SINGLE_DEVICE]

    def find(devices, impl, seqlen):
        return next((r for r in singles if (r.devices, r.impl, r.seqlen) == (devices, impl, seqlen)), None)

    out = []
    for seqlen, impl in sorted({(r.seqlen, r.impl) for r in singles}):
        gpus = sorted((r for r in singles if (r.seqlen, r.impl) == (seqlen, impl) and r.devices.isdigit()),
                      key=lambda r: int(r.devices))
        cpu = find("cpu", impl, seqlen) or find("cpu", CPU_COUNTERPART.get(impl), seqlen)
        if not gpus or cpu is None:
            continue
        gpu = gpus[0]
        model = None
        if gpu.fitted and cpu.fitted:
            f = crossover_flops(cpu.fit, gpu.fit)
            model = float("inf") if f is None else f
        rows = agg[(agg["seqlen"] == seqlen) & (((agg["devices"] == "cpu") & (agg["impl"] == cpu.impl))
                                                | ((agg["devices"] == gpu.devices) & (agg["impl"] == impl)))]
        out.append(Crossing(impl, cpu.impl, seqlen, gpu, cpu, model, measured(rows, gpu.devices, seqlen, impl)))
    return out


def shown(agg: pd.DataFrame) -> bool:
    """The ladder compares implementations: only a sweep of several has one."""
    return agg["impl"].nunique() > 1
