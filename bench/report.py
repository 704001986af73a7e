"""One self-contained HTML report from a results folder: a summary in
sentences with numbers, then the charts that back it (PNGs beside it too)."""
import base64
import io
from pathlib import Path

import jinja2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from markupsafe import Markup

from bench import envinfo, plots
from bench.analysis import (CostModel, aggregate, crossover_flops, device_label, fit_cost_model, ok_runs,
                            speedup_grid)
from bench.fsio import atomic_write
from bench.store import ResultStore
from sinelstm.flops import count_flops

ARTICLE = (10, 5)  # the article's batch size and n_units
PHASES = ["data", "forward", "backward", "communication", "optimizer"]


def _fmt_ms(ms: float) -> str:
    return f"{ms:.3g} ms"


def _fmt_x(x: float) -> str:
    return f"{x:.2g}×" if x < 10 else f"{x:.0f}×"


def _units_for_flops(flops: float, batch: int, seqlen: int, impl: str) -> float:
    """n_units at which an update of ``batch`` windows carries ``flops``."""
    lo, hi = 1.0, 1e6
    for _ in range(100):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if count_flops(mid, batch, seqlen, impl) < flops else (lo, mid)
    return lo


class Report:
    def __init__(self, folder: Path, warn=lambda message: None):
        self.folder = Path(folder)
        tables = ResultStore(folder, warn=warn).load()
        # The latest attempt of each run; failed attempts before it only in the count.
        self.runs, self.attempts = tables["runs"], tables["attempts"]
        self.curves, self.closed, self.breakdown = tables["curves"], tables["closed_loop"], tables["breakdown"]
        self.env = envinfo.load(self.folder, warn)
        self.ok = ok_runs(self.runs)
        self.agg = aggregate(self.runs)
        self.impl = "sinebench" if (self.agg["impl"] == "sinebench").any() else "article"
        self.main = self.agg[self.agg["impl"] == self.impl]
        self.seqlen = int(self.agg["seqlen"].iloc[0]) if len(self.agg) else 10
        self.models = {label: m for label, g in self.main.groupby("label")
                       if (m := fit_cost_model(g, label)) is not None}
        self.figures = {}

    # -- helpers --------------------------------------------------------------
    def one_gpu(self) -> str | None:
        singles = sorted(d for d in self.main["devices"].unique() if d.isdigit())
        return singles[0] if singles else None

    def multi_sets(self) -> list:
        m = self.main[self.main["n_devices"] > 1]
        return sorted({(d, s) for d, s in zip(m["devices"], m["strategy"])})

    def figure(self, name: str, fig, caption: str, alt: str) -> dict:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        self.figures[name] = buf.getvalue()
        return {"data": base64.b64encode(buf.getvalue()).decode(), "caption": caption, "alt": alt}

    def ms_at(self, devices: str, strategy: str, batch: int, units: int) -> float | None:
        sel = self.main[(self.main["devices"] == devices) & (self.main["strategy"] == strategy)
                        & (self.main["batchsize"] == batch) & (self.main["n_units"] == units)]
        return float(sel["ms"].iloc[0]) if len(sel) else None

    # -- summary --------------------------------------------------------------
    def machine(self) -> str:
        cpu = self.env.get("cpu", {})
        gpu = self.env.get("gpu", {})
        gpus = ", ".join(f"{g['id']}: {g['name']}" for g in gpu.get("devices", [])) or "no GPU"
        return (f"CPU: {cpu.get('model', '?')} ({cpu.get('usable_cores', '?')} cores usable) · GPUs: {gpus} · "
                f"recorded {self.env.get('recorded_at', '?')} · commit {self.env.get('git_commit', '?')}")

    def summary(self) -> list:
        out = []
        n_ok, n_all = len(self.ok), len(self.runs)
        out.append(f"{n_ok} of {n_all} runs finished ({self.main['repeats'].sum() if len(self.main) else 0} "
                   f"with the {self.impl} implementation, over {len(self.main)} configurations); "
                   f"times are medians of per-update times, then the median over repeats.")
        gpu = self.one_gpu()
        cpu_ms = self.ms_at("cpu", "single-device", *ARTICLE)
        if gpu is None:
            out.append("No GPU ran in this sweep, so it shows only the CPU's side of the question; "
                       "run it on a GPU machine (or see the GPU sweeps in results/) for the crossover.")
            if cpu_ms is not None:
                out.append(f"At the article's size (batch 10, n_units 5) the CPU takes {_fmt_ms(cpu_ms)} per update.")
        else:
            out += self._gpu_vs_cpu(gpu)
        out += self._cost_sentences(gpu)
        out += self._multi_sentences(gpu)
        out += self._breakdown_sentences(gpu)
        out += self._impl_sentences()
        out += self._target_sentences()
        out += self._spread_sentences()
        return out

    def _spread_sentences(self) -> list:
        """How far repeats of one configuration disagree: the size of a
        difference that this machine's noise alone can make."""
        rep = self.main[self.main["repeats"] > 1]
        if rep.empty:
            return []
        spread = rep["ms_max"] / rep["ms_min"] - 1
        worst = rep.loc[spread.idxmax()]
        return [f"Repeat to repeat, a configuration's time moved by {spread.median():.0%} in the median and by up "
                f"to {spread.max():.0%} ({worst['label']} at batch {worst['batchsize']} / n_units "
                f"{worst['n_units']}: {_fmt_ms(worst['ms_min'])} to {_fmt_ms(worst['ms_max'])}); smaller "
                f"differences than that are within this machine's noise."]

    def _target_sentences(self) -> list:
        size, runs = self.representative_runs()
        if size is None or runs.empty:
            return []
        target = float(runs["target_mse"].iloc[0])
        reached = runs.dropna(subset=["time_to_target_s"])
        budget = f"within each run's budget ({runs['max_seconds'].iloc[0]:g} s)" if pd.notna(
            runs["max_seconds"].iloc[0]) else "within each run's budget"
        if reached.empty:
            return [f"At batch {size[0]} / n_units {size[1]} no device set reached one-step test MSE {target:g} "
                    f"{budget}."]
        best = reached.loc[reached["time_to_target_s"].idxmin()]
        return [f"Time to one-step test MSE {target:g} at batch {size[0]} / n_units {size[1]}: fastest "
                f"{device_label(best['devices'], best['strategy'])}{' · article' if best['impl'] == 'article' else ''}"
                f" in {float(best['time_to_target_s']):.2f} s; {len(reached)} of {len(runs)} device sets reached it "
                f"{budget}."]

    def _gpu_vs_cpu(self, gpu) -> list:
        grid = speedup_grid(self.agg, self.impl, ("cpu", "single-device"), (gpu, "single-device"))
        if grid.empty:
            return []
        vals = grid.stack()
        wins = vals[vals > 1]
        names = self.ok.loc[self.ok["devices"] == gpu, "gpu_name"].dropna().unique()
        card = f" ({', '.join(map(str, names))})" if len(names) else ""
        out = [f"One GPU{card} beats the CPU in {len(wins)} of {len(vals)} configurations (batch × n_units)."]
        cpu_ms, gpu_ms = self.ms_at("cpu", "single-device", *ARTICLE), self.ms_at(gpu, "single-device", *ARTICLE)
        if cpu_ms and gpu_ms:
            rel = "faster" if gpu_ms < cpu_ms else "slower"
            out.append(f"At the article's size (batch 10, n_units 5) the CPU takes {_fmt_ms(cpu_ms)} per update and "
                       f"one GPU {_fmt_ms(gpu_ms)}: the GPU is {_fmt_x(max(cpu_ms, gpu_ms) / min(cpu_ms, gpu_ms))} "
                       f"{rel}.")
        best = vals.idxmax()
        out.append(f"The GPU's largest lead is {_fmt_x(vals.max())} at batch {best[0]} / n_units {best[1]}; "
                   f"its worst showing is {_fmt_x(vals.min())} at batch {vals.idxmin()[0]} / n_units "
                   f"{vals.idxmin()[1]}.")
        return out

    def _cost_sentences(self, gpu) -> list:
        out = []
        cpu_m = self.models.get("CPU")
        gpu_m = self.models.get("1 GPU")
        for m in (cpu_m, gpu_m):
            if m is not None:
                out.append(f"Cost model for {m.label}: {m.fixed_ms:.3g} ms fixed per update plus the FLOPs at "
                           f"{m.rate_text} (median error {m.rel_error:.0%} over {m.points} sizes).")
        if cpu_m and gpu_m:
            f = crossover_flops(cpu_m, gpu_m)
            if f is None:
                out.append("By this fit one GPU never beats the CPU here.")
            elif f == 0:
                out.append("By this fit one GPU beats the CPU at every size.")
            else:
                examples = ", ".join(f"n_units ≈ {_units_for_flops(f, b, self.seqlen, self.impl):.0f} at batch {b}"
                                     for b in sorted(self.main["batchsize"].unique())[:3])
                out.append(f"So one GPU beats the CPU once an update carries more than {f:.2g} FLOPs "
                           f"({examples}): below that the GPU's fixed cost per update — framework calls and "
                           f"kernel launches, not arithmetic — dominates.")
        return out

    def _multi_sentences(self, gpu) -> list:
        out = []
        eff = self.efficiency()
        for (devices, strategy), g in eff.groupby(["devices", "strategy"]):
            best = g.loc[g["speedup"].idxmax()]
            label = device_label(devices, strategy)
            s = (f"{label} against one: at best {_fmt_x(best['speedup'])} (efficiency {best['efficiency']:.0%}) at "
                 f"batch {best['batchsize']} / n_units {best['n_units']}")
            art = g[(g["batchsize"] == ARTICLE[0]) & (g["n_units"] == ARTICLE[1])]
            if len(art):
                s += f"; at the article's size {_fmt_x(float(art['speedup'].iloc[0]))}"
            comm = self.phase_ms(devices, strategy, "communication", *ARTICLE)
            if comm is not None:
                s += f", where communication alone takes {_fmt_ms(comm)} per update"
            out.append(s + ".")
        return out

    def _breakdown_sentences(self, gpu) -> list:
        out = []
        for devices in ["cpu"] + ([gpu] if gpu else []):
            phases = {p: self.phase_ms(devices, "single-device", p, *ARTICLE) for p in PHASES}
            if any(v is None for v in phases.values()):
                continue
            total = sum(phases.values())
            top = sorted(phases.items(), key=lambda kv: -kv[1])[:3]
            parts = ", ".join(f"{p} {_fmt_ms(v)}" for p, v in top)
            out.append(f"Where an update's time goes at the article's size on {device_label(devices, '')}: {parts} "
                       f"(of {_fmt_ms(total)} with every phase synchronized).")
        return out

    def _impl_sentences(self) -> list:
        pairs = self.impl_pairs()
        if pairs.empty:
            return []
        wide = pairs.pivot_table(index="config", columns="impl", values="ms")
        ratio = (wide["article"] / wide["sinebench"]).dropna()
        if ratio.empty:
            return []
        return [f"sinebench's implementation against the article's approach, same device sets and sizes: "
                f"{_fmt_x(ratio.median())} faster in the median ({_fmt_x(ratio.min())} to {_fmt_x(ratio.max())}, "
                f"{len(ratio)} configurations)."]

    # -- tables behind figures ------------------------------------------------
    def phase_ms(self, devices, strategy, phase, batch, units) -> float | None:
        if self.breakdown.empty:
            return None
        runs = self.ok[(self.ok["impl"] == self.impl) & (self.ok["devices"] == devices)
                       & (self.ok["batchsize"] == batch) & (self.ok["n_units"] == units)]
        if strategy:
            runs = runs[runs["strategy"] == strategy]
        b = self.breakdown[self.breakdown["run_id"].isin(runs["run_id"]) & (self.breakdown["phase"] == phase)]
        return float(b["ms"].median()) if len(b) else None

    def efficiency(self) -> pd.DataFrame:
        rows = []
        for devices, strategy in self.multi_sets():
            first = devices.split("+")[0]
            grid = speedup_grid(self.agg, self.impl, (first, "single-device"), (devices, strategy))
            if grid.empty:
                continue
            for (b, n), s in grid.stack().items():
                rows.append({"devices": devices, "strategy": strategy, "label": device_label(devices, strategy),
                             "batchsize": b, "n_units": n, "speedup": s, "efficiency": s / len(devices.split("+"))})
        return pd.DataFrame(rows, columns=["devices", "strategy", "label", "batchsize", "n_units", "speedup",
                                           "efficiency"])

    def impl_pairs(self) -> pd.DataFrame:
        both = self.agg.groupby(["devices", "strategy", "batchsize", "n_units"])["impl"].transform("nunique") > 1
        pairs = self.agg[both].copy()
        pairs["config"] = [f"{lab} · b{b}/n{n}" for lab, b, n in zip(pairs["label"], pairs["batchsize"],
                                                                       pairs["n_units"])]
        return pairs

    def representative_runs(self) -> tuple:
        """Repeat 0 of each device set at the article's size, else at the
        smallest size that every device set ran."""
        ok0 = self.ok[self.ok["repeat"] == 0]
        sizes = ok0.groupby(["batchsize", "n_units"])["devices"].nunique().sort_index()
        if sizes.empty:
            return None, ok0
        size = ARTICLE if ARTICLE in sizes.index else sizes.idxmax()
        runs = ok0[(ok0["batchsize"] == size[0]) & (ok0["n_units"] == size[1])]
        return size, runs.sort_values(["impl", "n_devices", "devices", "strategy"], ascending=[False, True, True, True])

    # -- sections -------------------------------------------------------------
    def sections(self) -> list:
        secs = []
        if len(self.agg):
            secs.append({"id": "time", "title": "Time per update and throughput", "text": [
                "Each point is the median over repeats of a run's median ms per update (warm-up excluded, GPUs "
                "timed with CUDA events around every update); the band spans the quartiles of per-update times."],
                "figures": [
                    self.figure("time_per_update", plots.time_vs_batch(self.agg, "ms"),
                                "ms per update against batch size, one panel per n_units.", "ms per update"),
                    self.figure("throughput", plots.time_vs_batch(self.agg, "samples"),
                                "Windows (sequences of seqlen steps) per second.", "throughput")]})
        secs += self.speedup_sections()
        if self.models:
            secs.append({"id": "cost", "title": "Cost model: fixed cost per update + cost per FLOP", "text": [
                "Each device set's times are fitted by ms = fixed + FLOPs / rate (least squares on relative "
                "error). The fixed part is what an update costs however small it is: Python and framework calls, "
                "kernel launches and synchronizations. The crossover is where the lines cross."],
                "figures": [self.figure("cost_model", plots.cost_model(self.main, self.models),
                                        "Measured ms per update against FLOPs per update, with fitted lines.",
                                        "cost model")],
                "table": self.cost_table()})
        if not self.breakdown.empty:
            secs.append(self.breakdown_section())
        eff = self.efficiency()
        if not eff.empty:
            secs.append({"id": "scaling", "title": "Scaling efficiency", "text": [
                "Speedup of each multi-device set over its first device alone, divided by the number of devices "
                "(1.0 is perfect scaling)."],
                "figures": [self.figure("scaling", plots.scaling(eff), "Scaling efficiency.", "scaling")]})
        pairs = self.impl_pairs()
        if not pairs.empty:
            secs.append({"id": "impls", "title": "The article's approach beside sinebench's", "text": [
                "Same device sets, sizes and batches; 'article' builds each step's batch on the host as Python "
                "lists and runs the model one step per call, 'sinebench' keeps the series on the device and "
                "batches the time-independent layers over the window."],
                "figures": [self.figure("implementations", plots.impl_compare(pairs),
                                        "ms per update by implementation.", "implementations")]})
        size, runs = self.representative_runs()
        if size is not None and len(runs):
            target = float(runs["target_mse"].iloc[0])
            ttt = "; ".join(
                f"{device_label(r['devices'], r['strategy'])}{' · article' if r['impl'] == 'article' else ''}: "
                + (f"{float(r['time_to_target_s']):.2f} s" if pd.notna(r["time_to_target_s"]) else "not reached")
                for _, r in runs.iterrows())
            secs.append({"id": "quality", "title": f"Learning: batch {size[0]}, n_units {size[1]}", "text": [
                f"Time to one-step test MSE {target:g} (evaluations included): {ttt}.",
                "Closed loop: the state is warmed on the first 10 % of the series, then each prediction is fed "
                "back as the next input."],
                "figures": [
                    self.figure("loss_vs_time", plots.loss_vs_time(self.curves, runs, target,
                                                                   f"batch {size[0]}, n_units {size[1]}"),
                                "One-step test MSE against wall time.", "loss against time"),
                    self.figure("closed_loop", plots.closed_loop_panels(self.closed, runs, "closed-loop prediction"),
                                "Closed-loop prediction per device set (first repeat).", "closed loop")]})
        secs.append({"id": "runs", "title": "All configurations", "text": [], "figures": [],
                     "table": self.runs_table()})
        return secs

    def speedup_sections(self) -> list:
        gpu = self.one_gpu()
        out = []
        cpu_m, gpu_m = self.models.get("CPU"), self.models.get("1 GPU")
        if gpu is not None:
            grid = speedup_grid(self.agg, self.impl, ("cpu", "single-device"), (gpu, "single-device"))
            if not grid.empty:
                predicted = None
                if cpu_m and gpu_m:
                    def predicted(b, u):
                        f = count_flops(u, b, self.seqlen, self.impl)
                        return float(cpu_m.predict_ms(f) / gpu_m.predict_ms(f))
                out.append({"id": "speedup-gpu", "title": "One GPU against the CPU", "text": [
                    "CPU ms / GPU ms: blue cells are where the GPU is faster. The dashed line is the cost model's "
                    "predicted crossover (speedup 1.0)."],
                    "figures": [self.figure("speedup_1gpu_vs_cpu", plots.speedup_heatmap(
                        grid, f"1 GPU vs CPU ({self.impl})", predicted), "Speedup of one GPU over the CPU.",
                        "speedup heatmap")]})
        for devices, strategy in self.multi_sets():
            first = devices.split("+")[0]
            grid = speedup_grid(self.agg, self.impl, (first, "single-device"), (devices, strategy))
            if grid.empty:
                continue
            name = device_label(devices, strategy)
            base = "1 GPU" if first != "cpu" else "the CPU"
            out.append({"id": f"speedup-{devices}-{strategy}", "title": f"{name} against {base}", "text": [],
                        "figures": [self.figure(f"speedup_{devices.replace('+', '_')}_{strategy}",
                                                plots.speedup_heatmap(grid, f"{name} vs {base}"),
                                                f"Speedup of {name} over {base}.", "speedup heatmap")]})
        return out

    def breakdown_section(self) -> dict:
        b = self.breakdown.merge(self.ok[["run_id", "impl", "devices", "strategy", "batchsize", "n_units"]],
                                 on="run_id")
        # The grid's corners and the article's size: enough to see the shift.
        corners = {(b_, n_) for b_ in (b["batchsize"].min(), b["batchsize"].max())
                   for n_ in (b["n_units"].min(), b["n_units"].max())} | {ARTICLE}
        b = b[[(x, y) in corners for x, y in zip(b["batchsize"], b["n_units"])]]
        b["order"] = b["devices"].map(lambda d: 0 if d.startswith("cpu") else len(d.split("+")))
        b = b.sort_values(["batchsize", "n_units", "impl", "order", "strategy"], ascending=[True, True, False, True,
                                                                                             True])
        b["bar"] = [f"b{bs}/n{n} · {device_label(d, s)}{' · article' if i == 'article' else ''}"
                    for bs, n, d, s, i in zip(b["batchsize"], b["n_units"], b["devices"], b["strategy"], b["impl"])]
        return {"id": "breakdown", "title": "Where the time goes", "text": [
            "At the grid's corners and the article's size: a separate, profiled run per configuration times each phase of an update with a device "
            "synchronization around it (so the timed runs stay undisturbed; the sum is an upper bound on the "
            "timed median). Data: building and moving the batch; communication: gradient sum or all-reduce and "
            "parameter copies."],
            "figures": [self.figure("breakdown", plots.breakdown(b), "Phase times per update.", "breakdown")]}

    def cost_table(self) -> Markup:
        rows = [{"device set": m.label, "fixed ms": f"{m.fixed_ms:.3g}", "rate": m.rate_text,
                 "median error": f"{m.rel_error:.0%}", "sizes": m.points} for m in self.models.values()]
        return Markup(pd.DataFrame(rows).to_html(index=False, escape=True))

    def runs_table(self) -> Markup:
        if self.agg.empty:
            return Markup("<p>No run finished.</p>")
        t = self.agg.sort_values(["impl", "n_units", "batchsize", "n_devices", "devices"])
        t = t[["impl", "label", "batchsize", "n_units", "repeats", "ms", "ms_p25", "ms_p75", "ms_min", "ms_max",
               "samples_per_s", "time_to_target_s", "val_mse"]].rename(
            columns={"ms_min": "fastest repeat", "ms_max": "slowest repeat"})
        failed = self.runs[self.runs["status"] != "ok"]
        html = t.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}", na_rep="–")
        if len(failed):
            html += "<p>Runs that did not finish:</p>" + failed[["run_id", "status", "message"]].to_html(
                index=False, escape=True)
        return Markup(html)

    def env_table(self) -> Markup:
        if not self.env:
            return Markup("<p>No env.json.</p>")
        flat = pd.json_normalize(self.env, sep=".").T.reset_index()
        flat.columns = ["field", "value"]
        flat = flat[flat["field"] != "command"]
        return Markup(flat.to_html(index=False, escape=True))

    def problems(self) -> str:
        bad = self.runs[self.runs["status"] != "ok"]
        retried = len(self.attempts) - len(self.runs)
        parts = []
        if len(bad):
            counts = bad["status"].value_counts()
            parts.append("Not every run finished: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                         + " (see 'All configurations').")
        if retried:
            parts.append(f"{retried} failed attempts were tried again; each run counts by its latest attempt.")
        return " ".join(parts)


def render(folder, output=None, warn=lambda message: None) -> Path:
    folder = Path(folder)
    output = Path(output) if output else folder / "report.html"
    rep = Report(folder, warn)
    summary = rep.summary()
    sections = rep.sections()
    env = jinja2.Environment(loader=jinja2.PackageLoader("bench", "templates"), autoescape=True)
    html = env.get_template("report.html.j2").render(
        title=folder.name, machine=rep.machine(), summary=summary, sections=sections, problems=rep.problems(),
        command=rep.env.get("command", "unknown"), env_table=rep.env_table())
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(output, html)
    figdir = output.parent / "figures"
    figdir.mkdir(exist_ok=True)
    for name, png in rep.figures.items():
        atomic_write(figdir / f"{name}.png", png)
    return output
