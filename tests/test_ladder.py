"""The overhead ladder (bench.ladder) on a synthetic sweep whose every
series follows a known cost model, so that each fixed cost, rate and
crossover can be worked out by hand; and the report's section from it."""
import json
from itertools import product

import pytest

from bench import ladder, sentences
from bench.analysis import aggregate
from bench.report import render
from bench.store import ResultStore
from sinelstm.flops import count_flops
from tests.test_report import make_results, synthetic_row

# (impl, devices, strategy) -> (fixed ms, ms per GFLOP)
MODELS = {
    ("sinebench", "cpu", "single-device"): (0.5, 10.0),  # 100 GFLOP/s
    ("sinebench", "0", "single-device"): (3.0, 0.02),  # 50 TFLOP/s
    ("torch", "cpu", "single-device"): (1.0, 8.0),  # 125 GFLOP/s
    ("torch", "0", "single-device"): (2.0, 0.025),  # 40 TFLOP/s
    ("torch-graph", "0", "single-device"): (0.15, 0.025),
    ("torch-ddp", "0+1", "ddp"): (2.5, 0.0125),
}
SIZES = list(product((10, 100, 1000), (5, 50, 500)))


def make_ladder_results(folder, models=MODELS, sizes=SIZES, seqlen=10):
    store = ResultStore(folder)
    store.open_for_writing()
    for (impl, devices, strategy), (fixed, per) in models.items():
        for b, n in sizes:
            f = count_flops(n, b, seqlen, impl)
            ms = fixed + f / 1e9 * per
            run_id = f"{impl}-{devices}-{b}-{n}-{seqlen}"
            store.append_run(synthetic_row({
                "run_id": run_id, "impl": impl, "devices": devices, "n_devices": len(devices.split("+")),
                "strategy": strategy, "batchsize": b, "n_units": n, "seqlen": seqlen, "repeat": 0, "status": "ok",
                "updates": 100, "ms_per_update_median": ms, "ms_per_update_p25": ms * 0.95,
                "ms_per_update_p75": ms * 1.05, "samples_per_s": b / ms * 1e3, "val_mse": 1e-3, "target_mse": 1e-3,
                "closed_loop_rmse_50": 0.2, "closed_loop_rmse_all": 0.8, "time_to_target_s": "",
                "flops_per_update": f, "max_seconds": 2.0, "gpu_name": "" if devices == "cpu" else "Fake GPU"}),
                {"curves.csv": [{"run_id": run_id, "update": 100, "elapsed_s": 0.1, "train_loss": 0.1,
                                 "val_mse": 0.1, "train_s": 0.1, "rmse_all": 0.8}]})
    (folder / "env.json").write_text(json.dumps({"gpu": {"devices": [{"id": 0, "name": "Fake GPU"}]}}))


def agg_of(folder):
    return aggregate(ResultStore(folder).load()["runs"])


def test_rungs_recover_each_series_fixed_cost_and_rate_cheapest_first(tmp_path):
    make_ladder_results(tmp_path)
    rungs = ladder.rungs(agg_of(tmp_path))
    assert [r.label for r in rungs] == ["1 GPU · torch-graph", "CPU", "CPU · torch", "1 GPU · torch",
                                        "2 GPUs (ddp) · torch-ddp", "1 GPU"]
    for r in rungs:
        fixed, per = MODELS[(r.impl, r.devices, r.strategy)]
        assert r.fitted and r.sizes == 9
        assert r.fixed_ms == pytest.approx(fixed, rel=1e-6)
        assert r.flops_per_s == pytest.approx(1e12 / per, rel=1e-6)
    assert rungs[0].smallest == (10, 5, pytest.approx(0.15 + count_flops(5, 10, 10, "torch-graph") / 1e9 * 0.025))


def test_crossover_moves_with_each_implementations_fixed_cost(tmp_path):
    make_ladder_results(tmp_path)
    agg = agg_of(tmp_path)
    got = {c.impl: c for c in ladder.crossings(agg, ladder.rungs(agg))}
    assert set(got) == {"sinebench", "torch", "torch-graph"}  # torch-ddp has no one-GPU series
    # (3 - 0.5) / (10 - 0.02) GFLOP and (2 - 1) / (8 - 0.025) GFLOP
    assert got["sinebench"].model_flops == pytest.approx(2.5e9 / 9.98, rel=1e-6)
    assert got["torch"].model_flops == pytest.approx(1e9 / 7.975, rel=1e-6)
    # No CPU torch-graph: its user runs torch there, and 0.15 ms < 1 ms fixed: the GPU always wins.
    graph = got["torch-graph"]
    assert (graph.cpu_impl, graph.model_flops) == ("torch", 0.0)
    assert graph.cells.cpu_wins_up_to is None and graph.cells.cells == 9
    assert sentences.crossing(graph).startswith("torch-graph, 10-step windows: one GPU beats the CPU running torch "
                                                "at every size, by the fits (fixed cost 1 ms on the CPU, 0.15 ms")


def test_without_good_fits_the_ladder_reads_the_measured_sizes(tmp_path):
    """One size per series: the fixed cost is the smallest update's time, the
    rate what its largest reached, the crossover from the cells."""
    make_ladder_results(tmp_path, sizes=[(10, 5)])
    agg = agg_of(tmp_path)
    rungs = ladder.rungs(agg)
    cpu = next(r for r in rungs if r.label == "CPU")
    f = count_flops(5, 10, 10, "sinebench")
    assert not cpu.fitted and cpu.fixed_ms == pytest.approx(0.5 + f / 1e9 * 10)
    assert cpu.flops_per_s == pytest.approx(f / cpu.fixed_ms * 1e3)
    c = {c.impl: c for c in ladder.crossings(agg, rungs)}["sinebench"]
    assert not c.by_model and c.cells.gpu_wins_from is None
    assert "at none of the 1 sizes both ran" in sentences.crossing(c)
    html = render(tmp_path).read_text()
    assert "measured (one size)" in html and 'id="crossovers"' in html


def test_only_a_sweep_of_several_implementations_gets_a_ladder(tmp_path):
    make_results(tmp_path / "one")
    make_ladder_results(tmp_path / "many")
    one = render(tmp_path / "one").read_text()
    many = render(tmp_path / "many").read_text()
    assert 'id="ladder"' not in one and "Overhead ladder" not in one
    for needle in ('<h2 id="ladder">', 'id="crossovers"', "Fixed cost per update with 10-step windows, cheapest "
                   "first: 1 GPU · torch-graph 0.15 ms; CPU 0.5 ms", "torch-ddp", "fit over 9 sizes"):
        assert needle in many
    assert (tmp_path / "many" / "figures" / "overhead_ladder.png").stat().st_size > 5000
