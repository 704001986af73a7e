"""Time to quality aggregated as MLPerf does, on synthetic rows whose right
answer is worked out by hand."""
import math

import pandas as pd
import pytest

from bench import sentences, ttq


def seeds(devices, strategy, seconds, recipe="quality", batch=10, units=32, status=None):
    """One runs.csv row per seed; ``None`` in ``seconds``: not reached."""
    rows = []
    for seed, s in enumerate(seconds):
        rows.append({"run_id": f"{devices}-{strategy}-{recipe}-{batch}-{units}-{seed}", "impl": "sinebench",
                     "recipe": recipe, "seqlen": 10 if recipe == "article" else 200, "strategy": strategy, "devices": devices,
                     "n_devices": len(devices.split("+")), "batchsize": batch, "n_units": units, "seed": seed,
                     "repeat": seed, "status": (status or ["ok"] * len(seconds))[seed],
                     "quality_status": "reached" if s is not None else "not reached",
                     "time_to_quality_s": s, "updates_to_quality": None if s is None else 100 * s,
                     "quality_target": 0.1, "max_seconds": 30.0, "closed_loop_rmse_all": 0.05 if s else 0.6})
    return rows


def test_olympic_mean_drops_fastest_and_slowest_and_one_failure_at_most():
    assert ttq.olympic_mean([1, 2, 3, 4, 100]) == pytest.approx(3.0)
    assert ttq.olympic_mean([1, 2, 3, 4, math.inf]) == pytest.approx(3.0)  # the failure is the slowest
    assert ttq.olympic_mean([1, 2, 3, math.inf, math.inf]) == math.inf  # one failure is left in
    assert ttq.olympic_mean([2, 4]) == pytest.approx(3.0)  # too few to drop any


def test_per_configuration_counts_and_means():
    runs = pd.DataFrame(seeds("cpu", "single-device", [5, 1, 3, 4, None])
                        + seeds("0", "single-device", [2, 2, 6, None, None])
                        + seeds("0+1", "chainermn", [1, 1, 1, 1, 1], status=["ok"] * 4 + ["diverged"]))
    table = ttq.time_to_quality(runs).set_index("devices")
    assert table.loc["cpu", ["seeds", "reached"]].tolist() == [5, 4]
    assert table.loc["cpu", "mean_s"] == pytest.approx(4.0)  # 3, 4, 5 after dropping 1 and the failure
    assert (table.loc["cpu", "fastest_s"], table.loc["cpu", "slowest_s"]) == (1, 5)
    assert table.loc["0", "mean_s"] == math.inf  # two of five never reached it
    # a diverged seed counts as one that did not converge
    assert table.loc["0+1", ["reached", "diverged"]].tolist() == [4, 1]
    assert table.loc["0+1", "mean_s"] == pytest.approx(1.0)


def test_fastest_device_set_per_size_and_the_sentence():
    runs = pd.DataFrame(seeds("cpu", "single-device", [5, 5, 5, 5, 5]) + seeds("0", "single-device", [2] * 5)
                        + seeds("cpu", "single-device", [None] * 5, batch=100, units=128)
                        + seeds("0", "single-device", [None] * 5, batch=100, units=128))
    table = ttq.time_to_quality(runs)
    (best,) = ttq.fastest_per_size(table)
    assert (best.batchsize, best.n_units, best.label, best.mean_s) == (10, 32, "1 GPU", 2.0)
    assert best.others == [("CPU", 5.0, 30.0)]
    assert ttq.unreached_sizes(table) == [("quality", 100, 128, 0, 10)]
    said = sentences.quality(runs)
    assert said[0].startswith("Time to a model that generates the sine (closed-loop RMSE ≤ 0.1) at batch 10 / "
                              "n_units 32, recipe quality: fastest 1 GPU, 2 s of training")
    assert said[0].endswith("; CPU 5 s.")
    assert "At batch 100 / n_units 128, recipe quality, no device set" in said[1]


def test_runs_with_another_target_window_or_cap_are_not_seeds_of_one_configuration():
    one = seeds("cpu", "single-device", [1, 2, 3])
    other_target = [{**r, "run_id": r["run_id"] + "t", "quality_target": 5.0} for r in one]
    other_window = [{**r, "run_id": r["run_id"] + "w", "seqlen": 20} for r in one]
    other_cap = [{**r, "run_id": r["run_id"] + "c", "max_seconds": 1.0} for r in one]
    table = ttq.time_to_quality(pd.DataFrame(one + other_target + other_window + other_cap))
    assert len(table) == 4 and (table["seeds"] == 3).all()
    assert sorted(table["target"]) == [0.1, 0.1, 0.1, 5.0]
    said = sentences.quality(pd.DataFrame(one + other_target))
    assert sorted(s.split("RMSE ≤ ")[1].split(")")[0] for s in said) == ["0.1", "5"]


def test_fewer_than_three_seeds_drop_none_and_say_so():
    (f,) = ttq.fastest_per_size(ttq.time_to_quality(pd.DataFrame(seeds("cpu", "single-device", [2, 4]))))
    assert f.mean_s == 3.0
    assert "(mean of 2 seeds (too few to drop the fastest and slowest);" in sentences.time_to_quality(f)


def test_article_baseline_counts_its_runs():
    runs = pd.DataFrame(seeds("cpu", "single-device", [None] * 3, recipe="article", units=5)
                        + seeds("0", "single-device", [None, None], recipe="article", units=5))
    b = ttq.article_baseline(runs)
    assert (b.runs, b.reached, b.best_rmse) == (5, 0, 0.6)
    assert ttq.article_baseline(pd.DataFrame(seeds("cpu", "single-device", [1.0]))) is None
