"""Report and analysis on a synthetic results folder (made-up timings that
follow a known cost model, so every stated number can be worked out by hand:
see the comments beside the expected summary)."""
import json
import re
import subprocess
import sys
from itertools import product

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from bench.analysis import CostModel, aggregate, crossover_flops, fit_cost_model
from bench import analysis, facts, sentences, trust
from bench.report import render
from bench.schema import LEGACY_DEFAULTS, RunRow
from bench.store import ResultStore
from sinelstm.flops import count_flops
from tests.helpers import PROJECT_ROOT, cli_env

CPU = (0.5, 10.0)  # fixed ms, ms per GFLOP: 100 GFLOP/s
GPU = (3.0, 0.02)  # 50 TFLOP/s


def synthetic_row(fields: dict) -> RunRow:
    """A runs.csv row with these fields, the others empty."""
    return RunRow(**{**dict.fromkeys(RunRow.columns()), **LEGACY_DEFAULTS, "message": "", **fields})


def make_results(folder, message="<script>alert(1)</script>", n_sets=3):
    store = ResultStore(folder)
    store.open_for_writing()
    for devices, strategy, (fixed, per) in [("cpu", "single-device", CPU), ("0", "single-device", GPU),
                                           ("0+1", "chainermn", (3.5, GPU[1] / 2))][:n_sets]:
        for b, n, repeat in product((10, 100, 1000), (5, 50, 500), (0, 1, 2)):
            f = count_flops(n, b, 10, "sinebench")
            # the third repeat is 10 % slower, 50 % for the CPU at batch 10 / n_units 5; medians stay exact
            slower = 1 if repeat < 2 else 1.5 if (devices, b, n) == ("cpu", 10, 5) else 1.1
            ms = (fixed + f / 1e9 * per) * slower
            run_id = f"{devices}-{strategy}-{b}-{n}-{repeat}"
            store.append_run(synthetic_row({"run_id": run_id, "impl": "sinebench", "devices": devices,
                              "n_devices": len(devices.split("+")), "strategy": strategy, "batchsize": b,
                              "n_units": n, "seqlen": 10, "repeat": repeat, "status": "ok", "updates": 100,
                              "ms_per_update_median": ms, "ms_per_update_p25": ms * 0.95,
                              "ms_per_update_p75": ms * 1.05, "samples_per_s": b / ms * 1e3,
                              "val_mse": 1e-3, "closed_loop_rmse_50": 0.2, "closed_loop_rmse_all": 0.8,
                              "time_to_target_s": "", "target_mse": 1e-3, "flops_per_update": f,
                              "max_seconds": 2.0, "gpu_name": "" if devices == "cpu" else "Fake GPU"}),
                             {"curves.csv": [{"run_id": run_id, "update": u, "elapsed_s": u * ms / 1e3,
                                              "train_loss": 1 / u, "val_mse": 1 / u, "train_s": u * ms / 2e3,
                                              "rmse_all": 0.8} for u in (50, 100)],
                              "closed_loop.csv": [{"run_id": run_id, "t": t, "truth": np.sin(t / 10),
                                                   "prediction": np.nan if t < 10 else 0.0}
                                                  for t in range(100)],
                              "breakdown.csv": [{"run_id": run_id, "phase": p, "ms": ms / 5}
                                                for p in ("data", "forward", "backward", "communication",
                                                          "optimizer")]})
    store.append_run(synthetic_row({"run_id": "broken", "impl": "sinebench", "devices": "0", "n_devices": 1,
                                    "strategy": "single-device", "batchsize": 10, "n_units": 5, "seqlen": 10,
                                    "repeat": 1, "status": "oom", "message": message}), {})
    (folder / "env.json").write_text(json.dumps({"command": "sinebench sweep --devices '<b>'",
                                                 "gpu": {"devices": [{"id": 0, "name": "Fake GPU"}]}}))


def test_cost_model_recovers_known_parameters(tmp_path):
    make_results(tmp_path)
    agg = aggregate(ResultStore(tmp_path).load()["runs"])
    cpu = fit_cost_model(agg[agg["devices"] == "cpu"], "CPU")
    gpu = fit_cost_model(agg[agg["devices"] == "0"], "1 GPU")
    assert cpu.fixed_ms == pytest.approx(CPU[0], rel=1e-6) and cpu.ms_per_gflop == pytest.approx(CPU[1], rel=1e-6)
    assert gpu.fixed_ms == pytest.approx(GPU[0], rel=1e-6)
    f = crossover_flops(cpu, gpu)
    assert cpu.predict_ms(f) == pytest.approx(gpu.predict_ms(f))


def test_crossover_edge_cases():
    slow = CostModel("a", 1.0, 1.0, 3, 0)
    assert crossover_flops(slow, CostModel("b", 2.0, 2.0, 3, 0)) is None  # never
    assert crossover_flops(slow, CostModel("b", 0.5, 0.1, 3, 0)) == 0.0  # always
    assert crossover_flops(slow, CostModel("b", 3.0, 0.0, 3, 0)) == pytest.approx(2e9)


# Worked out from CPU, GPU and 2 GPUs above; sinebench's FLOPs at seqlen 10 are
# 216 n² b + 720 n b: 9e4 at b10/n5, 5.436e10 at b1000/n500.
SUMMARY = [
    "81 of 82 runs finished (81 with the sinebench implementation, over 27 configurations); times are medians of "
    "per-update times, then the median over repeats.",
    # GPU faster where 0.5 + 10 f = 3 + 0.02 f (f in GFLOP), f > 0.25: b10/n500, b100/n500, b1000/n50, b1000/n500
    "One GPU (Fake GPU) beats the CPU in 4 of 9 configurations (batch × n_units).",
    # 0.5009 ms against 3.0000018 ms
    "At the article's size (batch 10, n_units 5) the CPU takes 0.501 ms per update and one GPU 3 ms: the GPU is 6× "
    "slower.",
    # (0.5 + 543.6) / (3 + 1.087) at b1000/n500; 0.5009 / 3 at b10/n5
    "The GPU's largest lead is 133× at batch 1000 / n_units 500; its worst showing is 0.17× at batch 10 / n_units 5.",
    "Cost model for CPU: 0.5 ms fixed per update plus the FLOPs at 100 GFLOP/s (median error 0% over 9 sizes).",
    "Cost model for 1 GPU: 3 ms fixed per update plus the FLOPs at 50 TFLOP/s (median error 0% over 9 sizes).",
    # 2.5 ms / 9.98 ms per GFLOP; 2160 n² + 7200 n = 2.505e8 at batch 10, and so on
    "So one GPU beats the CPU once an update carries more than 2.5e+08 FLOPs (n_units ≈ 339 at batch 10, "
    "n_units ≈ 106 at batch 100, n_units ≈ 32 at batch 1000): below that the GPU's fixed cost per update — "
    "framework calls and kernel launches, not arithmetic — dominates.",
    # (3 + 1.087) / (3.5 + 0.544) at b1000/n500, over 2 devices; 3 / 3.5 at b10/n5; each phase is ms / 5
    "2 GPUs (chainermn) against one: at best 1× (efficiency 51%) at batch 1000 / n_units 500; at the article's size "
    "0.86×, where communication alone takes 0.7 ms per update.",
    # five equal phases: the first three in the order of an update
    "Where an update's time goes at the article's size on CPU: data 0.1 ms, forward 0.1 ms, backward 0.1 ms (of "
    "0.501 ms with every phase synchronized).",
    "Where an update's time goes at the article's size on 1 GPU: data 0.6 ms, forward 0.6 ms, backward 0.6 ms (of "
    "3 ms with every phase synchronized).",
    "At batch 10 / n_units 5 no device set reached one-step test MSE 0.001 within each run's training budget (2 s).",
    "Repeat to repeat, a configuration's time moved by 10% in the median and by up to 50% (CPU at batch 10 / n_units "
    "5: 0.501 ms to 0.751 ms); smaller differences than that are within this machine's noise.",
]
FIGURES = {"time_per_update", "throughput", "speedup_1gpu_vs_cpu", "speedup_0_1_chainermn", "cost_model", "breakdown",
           "scaling", "loss_vs_time", "closed_loop"}
# GPU wins carry at least 5.436e8 FLOPs (b10/n500), CPU wins at most 5.76e7 (b100/n50); (3 + 1.087) / (3.5 + 0.544)
VERDICT = ("Per update, one Fake GPU beats the CPU in 4 of 9 configurations — every one above 58 MFLOP per update, "
           "from batch 10 / n_units 500; 2 GPUs (chainermn) beat one GPU by at most 1×.")


def test_summary_states_the_numbers_of_the_known_model(tmp_path):
    make_results(tmp_path)
    sw = facts.sweep(ResultStore(tmp_path).load())
    assert sentences.summary(sw, analysis.cost_models(sw.main)) == SUMMARY


def test_page_has_the_summary_sections_prose_and_figures_and_escapes_labels(tmp_path):
    make_results(tmp_path)
    html = render(tmp_path, tmp_path / "out" / "report.html").read_text()
    # The page states each speedup with its interval (bench.trust); the rest is SUMMARY word for word.
    sw = facts.sweep(ResultStore(tmp_path).load())
    ev = trust.evidence(sw.ok, tmp_path)
    on_page = sentences.summary(sw, analysis.cost_models(sw.main), ev)
    for s in on_page:
        assert f"<li>{escape(s)}</li>" in html, s
    assert set(SUMMARY) - set(on_page) == {SUMMARY[2], SUMMARY[3], SUMMARY[7]}  # the three with speedups
    assert on_page[2].startswith(SUMMARY[2][:-1] + " (95 % interval ")
    assert "repeat medians alone" in on_page[-1]  # this folder has no per-update samples
    ids = re.findall(r'<h2 id="([^"]+)">', html)
    assert ids == ["summary", "time", "cost", "breakdown", "scaling", "quality", "runs", "env"]
    # the first screen: verdict, the crossover, then the maps, all before the summary
    first = html[:html.index('<h2 id="summary">')]
    verdict = VERDICT.replace("; 2 GPUs", " (clearly, beyond the 95 % interval, in 4; too close to call in 0); 2 GPUs")
    assert f'<p class="verdict" id="verdict">{escape(verdict)}</p>' in first
    assert f'<p class="lead">{escape(SUMMARY[6])}</p>' in first
    assert re.findall(r'<figure id="([^"]+)"><img', first) == ["speedup_1gpu_vs_cpu", "speedup_0_1_chainermn"]
    # the template's prose, under its section's heading
    assert re.search(r'<h2 id="scaling">Scaling efficiency</h2>\s*<p>How many times faster each multi-device set', html)
    assert re.search(r'None of the 3 device sets reached one-step test MSE 0.001 within its budget.</p><p>Closed '
                     r'loop:', html)
    assert ('<td class="l">2 GPUs (chainermn)</td><td class="r">3.5</td><td class="l">100 TFLOP/s</td>'
            '<td class="l">not recorded</td><td class="r">0%</td><td class="l">yes</td>') in html  # cost table
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>" not in html and "sinebench sweep --devices &#39;&lt;b&gt;&#39;" in html
    assert escape("Not every run finished: 1 oom (see 'All configurations').") in html
    assert html.count("data:image/png;base64,") == len(FIGURES)
    assert {p.stem for p in (tmp_path / "out" / "figures").glob("*.png")} == FIGURES


def test_page_without_a_gpu_says_so(tmp_path):
    make_results(tmp_path, n_sets=1)
    html = render(tmp_path).read_text()
    assert escape("No GPU ran in this sweep, so it shows only the CPU's side of the question") in html
    assert escape("At the article's size (batch 10, n_units 5) the CPU takes 0.501 ms per update.") in html
    assert re.findall(r'<h2 id="([^"]+)">', html) == ["summary", "time", "cost", "breakdown", "quality", "runs", "env"]
    assert '<div class="maps"' not in html


def test_the_report_imports_neither_chainer_nor_cupy():
    code = "import sys, bench.report; print('chainer' in sys.modules, 'cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), cwd=PROJECT_ROOT)
    assert out.stdout.split() == ["False", "False"], out.stderr
