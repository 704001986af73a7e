"""Report and analysis on a synthetic results folder (made-up timings that
follow a known cost model, so the fitted numbers can be checked)."""
import json
from itertools import product

import numpy as np
import pandas as pd
import pytest

from bench.analysis import CostModel, aggregate, crossover_flops, fit_cost_model
from bench.report import Report, render
from bench.schema import RunRow
from bench.store import ResultStore
from sinelstm.flops import count_flops

CPU = (0.5, 0.01)  # fixed ms, ms per GFLOP
GPU = (3.0, 0.0001)


def synthetic_row(fields: dict) -> RunRow:
    """A runs.csv row with these fields, the others empty."""
    return RunRow(**{**dict.fromkeys(RunRow.columns()), "message": "", **fields})


def make_results(folder, message="<script>alert(1)</script>"):
    store = ResultStore(folder)
    store.open_for_writing()
    for devices, strategy, (fixed, per) in [("cpu", "single-device", CPU), ("0", "single-device", GPU),
                                           ("0+1", "chainermn", (3.5, GPU[1] / 2))]:
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
                                              "train_loss": 1 / u, "val_mse": 1 / u} for u in (50, 100)],
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


def test_report_states_the_crossover_and_escapes_labels(tmp_path):
    make_results(tmp_path)
    rep = Report(tmp_path)
    summary = " ".join(rep.summary())
    assert "One GPU (Fake GPU) beats the CPU in" in summary
    assert "once an update carries more than" in summary
    assert "2 GPUs (chainermn) against one" in summary
    assert "moved by 10% in the median and by up to 50% (CPU at batch 10 / n_units 5: 0.5 ms to 0.75 ms)" in summary
    out = render(tmp_path)
    html = out.read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert html.count("data:image/png;base64,") >= 6
    assert "1 oom" in html
    for name in ("speedup_1gpu_vs_cpu", "cost_model", "breakdown", "scaling", "closed_loop"):
        assert (tmp_path / "figures" / f"{name}.png").exists(), name
