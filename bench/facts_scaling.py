"""The scaling axes' numbers: speedup and efficiency against device count
(strong and weak scaling), TF32 against FP32, each NCCL transport's
multi-GPU speedup, and the cost model and crossover per precision.

Pure DataFrame functions over :func:`bench.analysis.aggregate`'s rows, like
:mod:`bench.facts`; no English, no framework. A multi-device set is always
compared with its first device alone, at the same precision:

* strong scaling (the global batch fixed): speedup = ms(1) / ms(N);
* weak scaling (the batch per device fixed, ``--batch-per-device``): the
  set does N times the work per update, so speedup = N * ms(1) / ms(N),
  where ms(1) is one device at the per-device batch;

efficiency = speedup / N in both, 1 being ideal.

Where one device also ran the strong-scaling batch's share, B / N, a
strong-scaling shortfall splits in two (:func:`strong_losses`): each
device of the set works on B / N, and one device alone at B / N is
already less efficient per sample than at B (a GEMM with fewer rows fills
fewer tiles), so ms(1, B) / ms(1, B / N) is the speedup the set would
have with free communication; what remains, ms(1, B / N) / ms(N, B), is
the all-reduce, the synchronization and the slowest rank. The first is the
arithmetic's, no interconnect can win it back; the second is the link's
and the framework's.
"""
from dataclasses import dataclass

import pandas as pd

from bench import analysis, crossover
from bench.transports import DEFAULT as DEFAULT_TRANSPORT, applies
from sinelstm.devices import parse_device_set
from sinelstm.names import PRECISIONS, SINGLE_DEVICE, device_label

FP32 = PRECISIONS[0]
STRONG, WEAK = "strong", "weak"
CURVE_COLUMNS = ["kind", "devices", "strategy", "precision", "scaling", "n_devices", "batchsize", "per_device",
                 "n_units", "size", "ms", "base_ms", "speedup", "efficiency", "series"]


def baseline(agg: pd.DataFrame) -> pd.DataFrame:
    """The rows every other section of the report compares: fp32 (or the
    one precision that ran), NCCL's default transport (or the one that
    ran), strong scaling (or weak, if nothing else ran)."""
    for column, value in (("precision", FP32), ("transport", DEFAULT_TRANSPORT), ("scaling", STRONG)):
        if column in agg and len(agg) and (agg[column] == value).any():
            agg = agg[agg[column] == value]
        elif column in agg and len(agg):  # the most common; a tie goes to PRECISIONS' order
            modes = agg[column].mode()
            agg = agg[agg[column] == modes.sort_values(key=_in_precision_order).iloc[0]]
    return agg


def _kind(devices: str) -> str:
    return "GPU" if parse_device_set(devices, check=False).is_gpu else "CPU"


def device_counts(agg: pd.DataFrame) -> dict:
    """Distinct device counts per kind ('GPU', 'CPU') that finished runs."""
    out = {}
    for devices, n in zip(agg["devices"], agg["n_devices"]):
        out.setdefault(_kind(devices), set()).add(int(n))
    return {k: sorted(v) for k, v in out.items()}


def has_scaling(agg: pd.DataFrame) -> bool:
    """Whether the sweep has a scaling curve to draw: one kind of device at
    two multi-device counts or more (e.g. 1, 2 and 4 GPUs), or weak-scaling
    runs. One device against two alone is the report's "Scaling efficiency"
    section already."""
    multi = any(len([n for n in v if n > 1]) >= 2 for v in device_counts(agg).values())
    weak = "scaling" in agg and ((agg["scaling"] == WEAK) & (agg["n_devices"] > 1)).any()
    return bool(multi or weak)


def _ms(rows, devices, strategy, precision, scaling, batch, units, transport=DEFAULT_TRANSPORT):
    sel = rows[(rows["devices"] == devices) & (rows["strategy"] == strategy) & (rows["precision"] == precision)
               & (rows["scaling"] == scaling) & (rows["batchsize"] == batch) & (rows["n_units"] == units)
               & (rows["transport"] == transport)]
    return float(sel["ms"].median()) if len(sel) else None


def _single_ms(rows, devices, precision, scaling, batch, units):
    """One device's ms at this batch: a run of this scaling, else the other
    (one device's run does not depend on how the batch was chosen)."""
    for s in (scaling, WEAK if scaling == STRONG else STRONG):
        ms = _ms(rows, devices, SINGLE_DEVICE, precision, s, batch, units)
        if ms is not None:
            return ms
    return None


def size_label(scaling: str, per_device: int, batch: int, units: int) -> str:
    return f"b{per_device}/device, n{units}" if scaling == WEAK else f"b{batch}, n{units}"


def curves(agg: pd.DataFrame, transport: str = DEFAULT_TRANSPORT) -> pd.DataFrame:
    """Speedup and efficiency of every set over its first device alone, with
    the one-device point (speedup 1) of each curve, for ``transport``'s runs
    of multi-process sets (the others have no transport)."""
    rows = []
    multi = agg[(agg["n_devices"] > 1) & ((agg["transport"] == transport) | (agg["strategy"] != "chainermn"))]
    for _, r in multi.iterrows():
        ds = parse_device_set(r["devices"], check=False)
        n = ds.n_devices
        per_device = int(r["batchsize"]) // n
        base_batch = per_device if r["scaling"] == WEAK else int(r["batchsize"])
        base = _single_ms(agg, ds.first_spec, r["precision"], r["scaling"], base_batch, r["n_units"])
        if base is None:
            continue
        speedup = (n if r["scaling"] == WEAK else 1) * base / r["ms"]
        common = dict(kind=_kind(r["devices"]), strategy=r["strategy"], precision=r["precision"],
                      scaling=r["scaling"], per_device=per_device, n_units=int(r["n_units"]),
                      size=size_label(r["scaling"], per_device, int(r["batchsize"]), int(r["n_units"])),
                      base_ms=base, series=f"{r['strategy']} · {r['precision']}")
        rows.append({**common, "devices": r["devices"], "n_devices": n, "batchsize": int(r["batchsize"]),
                     "ms": float(r["ms"]), "speedup": speedup, "efficiency": speedup / n})
        rows.append({**common, "devices": ds.first_spec, "n_devices": 1, "batchsize": base_batch, "ms": base,
                     "speedup": 1.0, "efficiency": 1.0})
    out = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    return out.drop_duplicates(["kind", "strategy", "precision", "scaling", "size", "n_devices"]).sort_values(
        ["kind", "scaling", "n_units", "per_device", "batchsize", "strategy", "precision", "n_devices"],
        ignore_index=True, key=_in_precision_order)


LOSS_COLUMNS = ["impl", "kind", "devices", "n_devices", "strategy", "precision", "batchsize", "n_units", "ms",
                "base_ms", "share_ms", "speedup", "bound", "batch_efficiency", "parallel_efficiency"]


def strong_losses(agg: pd.DataFrame) -> pd.DataFrame:
    """Each strong-scaling multi-GPU run (NCCL's default transport) whose
    first GPU also ran alone at the whole batch B and at its share B / N
    (same implementation, recipe and precision): ``bound`` = ms(1, B) /
    ms(1, B / N), the speedup free communication would give;
    ``batch_efficiency`` = bound / N; ``parallel_efficiency`` = ms(1, B / N)
    / ms(N, B), what communication, synchronization and (single-process)
    one process driving every GPU in turn leave of it; speedup = N x
    batch_efficiency x parallel_efficiency. GPUs only: CPU replicas share
    the machine's cores (each rank gets a part of the threads one CPU run
    has), so one CPU alone at B / N is not what each replica was."""
    rows = []
    for _, r in agg[(agg["n_devices"] > 1) & (agg["scaling"] == STRONG)].iterrows():
        ds = parse_device_set(r["devices"], check=False)
        n, batch = ds.n_devices, int(r["batchsize"])
        other_link = applies(r["devices"], r["strategy"]) and r["transport"] != DEFAULT_TRANSPORT
        if not ds.is_gpu or other_link or batch % n:
            continue
        mine = agg[(agg["impl"] == r["impl"]) & (agg["recipe"] == r["recipe"])]
        base = _single_ms(mine, ds.first_spec, r["precision"], STRONG, batch, r["n_units"])
        share = _single_ms(mine, ds.first_spec, r["precision"], STRONG, batch // n, r["n_units"])
        if base is None or share is None:
            continue
        ms, bound = float(r["ms"]), base / share
        rows.append({"impl": r["impl"], "kind": _kind(r["devices"]), "devices": r["devices"], "n_devices": n,
                     "strategy": r["strategy"], "precision": r["precision"], "batchsize": batch,
                     "n_units": int(r["n_units"]), "ms": ms, "base_ms": base, "share_ms": share,
                     "speedup": base / ms, "bound": bound, "batch_efficiency": bound / n,
                     "parallel_efficiency": share / ms})
    return pd.DataFrame(rows, columns=LOSS_COLUMNS).sort_values(
        ["impl", "kind", "n_units", "batchsize", "precision", "strategy", "n_devices"], ignore_index=True,
        key=_in_precision_order)


def _in_precision_order(column: pd.Series) -> pd.Series:
    """A sort key: precisions in PRECISIONS' order (fp32 first), not the
    alphabet's (which puts 3xtf32 first); other columns as they are."""
    if column.name != "precision":
        return column
    return column.map({p: i for i, p in enumerate(PRECISIONS)}).fillna(len(PRECISIONS))


def curves_by_impl(agg: pd.DataFrame, impls: list) -> pd.DataFrame:
    """:func:`curves` of each implementation (each against its own one
    device), stacked, with an ``impl`` column; with several, the series
    names say whose they are."""
    parts = []
    for impl in impls:
        c = curves(agg[agg["impl"] == impl])
        if len(impls) > 1:
            c = c.assign(series=c["series"] + f" · {impl}")
        parts.append(c.assign(impl=impl, main=impl == impls[0]))
    if not parts:
        return pd.DataFrame(columns=CURVE_COLUMNS + ["impl", "main"])
    return pd.concat(parts, ignore_index=True)


def scaling_impls(agg: pd.DataFrame, main: str) -> list:
    """The implementations with a scaling curve, ``main`` first."""
    others = sorted(i for i in agg["impl"].unique() if i != main)
    return [i for i in [main, *others] if has_scaling(agg[agg["impl"] == i])]


@dataclass(frozen=True)
class Best:
    """The largest device count's best speedup, for the summary."""

    scaling: str
    kind: str
    strategy: str
    precision: str
    n_devices: int
    size: str
    speedup: float
    efficiency: float
    impl: str = ""  # whose, where curves of several implementations are drawn


def best_at_most_devices(c: pd.DataFrame) -> list:
    """Per (scaling, kind, strategy, precision[, implementation]): the
    largest device count's best speedup, and where."""
    out = []
    c = c if "impl" in c else c.assign(impl="")
    several = c["impl"].nunique() > 1
    for (scaling, kind, strategy, precision, impl), g in c.groupby(
            ["scaling", "kind", "strategy", "precision", "impl"], sort=False):
        top = g[g["n_devices"] == g["n_devices"].max()]
        if top["n_devices"].iloc[0] < 2:
            continue
        r = top.loc[top["speedup"].idxmax()]
        out.append(Best(scaling, kind, strategy, precision, int(r["n_devices"]), r["size"], float(r["speedup"]),
                        float(r["efficiency"]), impl if several else ""))
    return out


def precision_speedup(agg: pd.DataFrame) -> pd.DataFrame:
    """Each other precision against fp32 per device set and size (strong
    scaling, default transport): how many times faster, > 1 when the other
    is; one row per (set, size, precision), in PRECISIONS' order; with each
    one's first-gradient error against float64 where measured (NaN else)."""
    rows = agg[(agg["scaling"] == STRONG) & (agg["transport"] == DEFAULT_TRANSPORT)]
    keys = ["devices", "strategy", "batchsize", "n_units"]
    wide = rows.pivot_table(index=keys, columns="precision", values="ms", aggfunc="median")
    errors = rows.pivot_table(index=keys, columns="precision", values="grad_error", aggfunc="first",
                              dropna=False).reindex(index=wide.index, columns=wide.columns)
    parts = []
    for other in [p for p in PRECISIONS[1:] if FP32 in wide and p in wide]:
        pair = wide[[FP32, other]].dropna()
        err = errors.loc[pair.index]
        pair = pair.reset_index()
        parts.append(pd.DataFrame({
            **{k: pair[k] for k in keys}, "precision": other,
            "label": [device_label(d, s) for d, s in zip(pair["devices"], pair["strategy"])],
            "fp32_ms": pair[FP32], "ms": pair[other], "speedup": pair[FP32] / pair[other],
            "fp32_grad_error": err[FP32].to_numpy(), "grad_error": err[other].to_numpy()}))
    columns = keys + ["precision", "label", "fp32_ms", "ms", "speedup", "fp32_grad_error", "grad_error"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def transport_speedup(agg: pd.DataFrame) -> pd.DataFrame:
    """Each chainermn multi-GPU set's speedup over one GPU, per transport,
    size and precision (strong scaling); ``loses``: slower than one GPU."""
    rows = []
    runs = agg[(agg["strategy"] == "chainermn") & (agg["n_devices"] > 1) & (agg["scaling"] == STRONG)]
    for _, r in runs.iterrows():
        ds = parse_device_set(r["devices"], check=False)
        if not ds.is_gpu:
            continue
        base = _single_ms(agg, ds.first_spec, r["precision"], STRONG, int(r["batchsize"]), r["n_units"])
        if base is None:
            continue
        rows.append({"devices": r["devices"], "n_devices": ds.n_devices, "transport": r["transport"],
                     "precision": r["precision"], "batchsize": int(r["batchsize"]), "n_units": int(r["n_units"]),
                     "flops": float(r["flops"]), "ms": float(r["ms"]), "base_ms": base,
                     "speedup": base / float(r["ms"]), "loses": base < float(r["ms"])})
    return pd.DataFrame(rows, columns=["devices", "n_devices", "transport", "precision", "batchsize", "n_units",
                                       "flops", "ms", "base_ms", "speedup", "loses"])


def link_losses(ts: pd.DataFrame, transport: str = "socket") -> pd.DataFrame:
    """Where ``transport`` makes a set slower than one GPU although the
    default transport does not: the sizes the slow link costs the answer."""
    if ts.empty:
        return ts
    keys = ["devices", "precision", "batchsize", "n_units"]
    slow = ts[(ts["transport"] == transport) & ts["loses"]]
    fast = ts[(ts["transport"] == DEFAULT_TRANSPORT)][keys + ["speedup"]].rename(columns={"speedup": "default"})
    both = slow.merge(fast, on=keys, how="left")
    return both[~(both["default"] < 1)].reset_index(drop=True)  # NaN (no default run) kept


@dataclass(frozen=True)
class PrecisionCrossover:
    precision: str
    cpu: analysis.CostModel | None  # always fit on fp32 runs: a CPU has no TF32
    gpu: analysis.CostModel | None
    flops: float | None  # where one GPU starts to beat the CPU by the models; None: never or no model
    measured: crossover.Measured | None = None  # the same from the measured cells (CPU fp32 against it)

    @property
    def trusted(self) -> bool:
        return self.cpu is not None and self.gpu is not None and self.cpu.drawn and self.gpu.drawn


def precision_crossovers(main_impl: pd.DataFrame, peaks: dict | None = None) -> list:
    """One GPU's cost model per precision, against the CPU's (fp32), and
    where they cross. The fp32 GPU fit is held under the FP32 peak; a TF32
    fit is not, since tensor cores are not bounded by it."""
    rows = main_impl[(main_impl["scaling"] == STRONG) & (main_impl["transport"] == DEFAULT_TRANSPORT)]
    cpu_rows = rows[(rows["precision"] == FP32) & (rows["devices"] == "cpu")]
    cpu = analysis.cost_models(cpu_rows, peaks).get(analysis.CPU)
    out = []
    for precision in [p for p in PRECISIONS if p in set(rows["precision"])]:
        gpus = rows[(rows["precision"] == precision) & (rows["n_devices"] == 1) & (rows["devices"] != "cpu")]
        if gpus.empty:
            continue
        gpus = gpus[gpus["devices"] == sorted(gpus["devices"].unique())[0]]
        bound = peaks if precision == FP32 else {k: v for k, v in (peaks or {}).items() if k != "gpu"}
        gpu = analysis.cost_models(gpus, bound).get(analysis.ONE_GPU)
        flops = analysis.crossover_flops(cpu, gpu) if cpu is not None and gpu is not None else None
        cells = None
        if len(cpu_rows):
            cells = crossover.measured(pd.concat([cpu_rows, gpus]), gpus["devices"].iloc[0],
                                       int(gpus["seqlen"].iloc[0]), str(gpus["impl"].iloc[0]))
        out.append(PrecisionCrossover(precision, cpu, gpu, flops, cells))
    return out


def bus_bandwidth(records: dict) -> pd.DataFrame:
    """The NCCL measurements of env.json's invocations (bench.busbw), one
    row per device set and transport (the latest invocation's)."""
    rows = {}
    for record in records.values():
        bw = record.get("busbw") or {}
        for r in bw.get("results", []):
            rows[(r.get("devices"), r.get("transport"))] = r
    return pd.DataFrame([{"devices": d, "transport": t, "status": r.get("status"), "why": r.get("why", ""),
                          "latency_us": r.get("latency_us"), "busbw_GBps": r.get("busbw_GBps"),
                          "paths": ", ".join(r.get("nccl_paths") or [])} for (d, t), r in rows.items()],
                        columns=["devices", "transport", "status", "why", "latency_us", "busbw_GBps", "paths"])
