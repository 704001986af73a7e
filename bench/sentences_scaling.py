"""The scaling section's sentences: the numbers of :mod:`bench.facts_scaling`
in English, nothing computed here."""
from bench.tables import num
from sinelstm.names import device_label, one_process_per_device

UNIT = {"GPU": ("GPU", "GPUs"), "CPU": ("CPU replica", "CPU replicas")}


def _pct(x: float) -> str:
    return f"{x:.0%}"


def best(b) -> str:
    """'Strong scaling (global batch fixed): 4 GPUs with chainermn in fp32 are
    3.23× one GPU at b4096, n1024 (81 % efficiency).'"""
    one, many = UNIT[b.kind]
    what = "global batch fixed" if b.scaling == "strong" else "batch per device fixed"
    whose = f" ({b.impl})" if b.impl else ""
    return (f"{b.scaling.capitalize()} scaling ({what}){whose}: {b.n_devices} {many} with {b.strategy} in "
            f"{b.precision} are {num(b.speedup)}× one {one} at {b.size} ({_pct(b.efficiency)} efficiency), their "
            "best size.")


def losses(ls) -> list:
    """Per implementation, kind and precision, its largest set's best strong
    speedup below N split in two: 'Why graph's 4 GPUs (chainermn) (fp32,
    b4096, n1024) are 3.64× one GPU and not 4×: one GPU at each one's share
    of the batch (1024) is 92% as efficient per sample as at 4096, which
    caps the speedup at 3.68×; communication and synchronization keep 98.7%
    of that cap.'"""
    out = []
    for (impl, _, precision), g in ls.groupby(["impl", "kind", "precision"], sort=False):
        top = g[g["n_devices"] == g["n_devices"].max()]
        r = top.loc[top["speedup"].idxmax()]
        if r["speedup"] >= r["n_devices"]:
            continue
        label = device_label(r["devices"], r["strategy"])
        one = UNIT[r["kind"]][0]
        out.append(f"Why {impl}'s {label} ({precision}, b{r['batchsize']}, n{r['n_units']}) are "
                   f"{num(r['speedup'])}× one {one} and not {r['n_devices']}×: one {one} at each one's share of the "
                   f"batch ({r['batchsize'] // r['n_devices']}) is {_pct(r['batch_efficiency'])} as efficient per "
                   f"sample as at {r['batchsize']}, which caps the speedup at {num(r['bound'])}×; "
                   f"{_rest(r['strategy'], r['parallel_efficiency'])}.")
    return out


def _rest(strategy: str, parallel_efficiency: float) -> str:
    who = ("communication, synchronization and one process driving every device in turn"
           if not one_process_per_device(strategy) else "communication and synchronization")
    if parallel_efficiency > 1:
        return f"the set beat that cap by {parallel_efficiency - 1:.1%}"
    return f"{who} keep {parallel_efficiency:.1%} of that cap"


# What each precision other than fp32 is, for the reader of its sentence.
PRECISION_WORDS = {"tf32": "TF32 (10-bit inputs to the tensor cores)",
                   "3xtf32": "3xTF32 (near FP32's accuracy: three TF32 products of split operands)"}


def precision(ps, crossovers) -> list:
    out = []
    for other, g in ps.groupby("precision", sort=False):
        top = g.loc[g["speedup"].idxmax()]
        low = g.loc[g["speedup"].idxmin()]
        out.append(f"{PRECISION_WORDS.get(other, other)} is {num(top['speedup'])}× fp32 at best ({top['label']}, "
                   f"b{top['batchsize']}, n{top['n_units']}: {num(top['fp32_ms'])} → {num(top['ms'])} ms) and "
                   f"{num(low['speedup'])}× at worst ({low['label']}, b{low['batchsize']}, n{low['n_units']}).")
    if others := list(dict.fromkeys(ps["precision"])):
        out.append(f"{' and '.join(others)} speed{'s' if len(others) == 1 else ''} up matrix products only, so "
                   "sizes whose update is fixed cost gain nothing.")
    if line := exactness(ps):
        out.append(line)
    for c in crossovers:
        if c.gpu is None:
            continue
        fit = (f"one GPU in {c.precision}: {num(c.gpu.fixed_ms)} ms fixed + FLOPs at {c.gpu.rate_text} "
               f"(median error {c.gpu.rel_error:.0%})")
        if c.cpu is None:
            out.append(f"Cost model of {fit}; no CPU runs to cross.")
        elif c.flops is None:
            out.append(f"Cost model of {fit}: by the models it never beats the CPU.")
        else:
            trust = "" if c.trusted else " (a fit's error is above 25 %: read the measured cells instead)"
            out.append(f"Cost model of {fit}: by the models it beats the CPU above {c.flops:.2g} FLOPs per "
                       f"update{trust}.")
        if c.measured is not None:
            out.append(measured(c.precision, c.measured))
    return out


def exactness(ps) -> str | None:
    """What each precision costs in exactness, at the largest size where
    fp32 and at least one other have their first gradient's error against
    float64 (bench.worker.first_gradient_error)."""
    known = ps.dropna(subset=["fp32_grad_error", "grad_error"])
    if known.empty:
        return None
    size = known.assign(work=known["batchsize"] * known["n_units"]).sort_values(
        ["work", "n_units", "devices", "strategy"], kind="stable").iloc[-1]
    where = ["devices", "strategy", "batchsize", "n_units"]
    at = known[(known[where] == size[where]).all(axis=1)]
    errors = [("fp32", size["fp32_grad_error"])] + list(zip(at["precision"], at["grad_error"]))
    return ("What it costs in exactness: one update's gradient of the recurrent weights against the same "
            "update in float64 (norm of the difference over the norm; the eager path's, same weights and "
            f"windows) is {', '.join(f'{p} {e:.1e}' for p, e in errors)} ({size['label']}, "
            f"b{size['batchsize']}, n{size['n_units']}).")


def measured(precision: str, m) -> str:
    """The measured cells' crossover of one GPU in ``precision`` against the CPU."""
    head = f"Measured, one GPU in {precision} against the CPU over {m.cells} sizes: "
    if m.gpu_wins_from is None:
        return head + "the CPU is faster at every one."
    if m.cpu_wins_up_to is None:
        return head + "the GPU is faster at every one."
    if m.clean:
        return (head + f"the GPU wins every size above {m.cpu_wins_up_to:.2g} FLOPs per update (from batch "
                f"{m.first_win[0]} / n_units {m.first_win[1]}), the CPU every one at or below it.")
    return (head + f"no one threshold: the GPU wins from {m.gpu_wins_from:.2g} FLOPs, the CPU up to "
            f"{m.cpu_wins_up_to:.2g}.")


def transport(ts, losses) -> list:
    out = []
    for (devices, prec), g in ts.groupby(["devices", "precision"]):
        big = g[g["flops"] == g["flops"].max()]
        parts = [f"{t} {num(s)}×" for t, s in zip(big["transport"], big["speedup"])]
        r = big.iloc[0]
        out.append(f"{r['n_devices']} GPUs ({devices}, {prec}) over one GPU at the largest size "
                   f"(b{r['batchsize']}, n{r['n_units']}): " + ", ".join(parts) + ".")
    for _, r in losses.iterrows():
        default = "" if r["default"] != r["default"] else f" (default transport: {num(r['default'])}×)"
        out.append(f"Over sockets, {r['n_devices']} GPUs lose to one at b{r['batchsize']}, n{r['n_units']} "
                   f"({r['precision']}): {num(r['speedup'])}×{default}.")
    return out
