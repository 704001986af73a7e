"""The scaling axes without a GPU: precision, NCCL transport and weak
scaling through the grid, the run schema, the runner's grouping and the
report's facts, on synthetic rows whose numbers are worked out by hand in
the comments."""
import json
from dataclasses import asdict, replace

import pandas as pd
import pytest

from bench import busbw, facts, facts_scaling as fs, sentences_scaling, transports
from bench.analysis import aggregate
from bench.grid import expand_grid, grid_size, skipped, why_not
from bench.launch import worker_env
from bench.report import render
from bench.runner import launch_key, run_all
from bench.schema import RunRow, RunSpec
from bench.store import ResultStore
from sinelstm import precision
from sinelstm.config import TrainConfig
from sinelstm.devices import parse_device_set
from sinelstm.flops import count_flops
from tests.test_report import synthetic_row

BASE = TrainConfig()


# -- precision and transport: the environment of a process ---------------------------
def test_precision_env_and_check(monkeypatch):
    assert precision.env_for("tf32") == {"CUPY_TF32": "1", "SINEBENCH_3XTF32": "0"}
    assert precision.env_for("fp32") == {"CUPY_TF32": "0", "SINEBENCH_3XTF32": "0"}  # overrides a user's 1s
    assert precision.env_for("3xtf32") == {"CUPY_TF32": "0", "SINEBENCH_3XTF32": "1"}  # CuPy's own in fp32
    assert precision.process_precision({"CUPY_TF32": "1"}) == "tf32"
    assert precision.process_precision({"CUPY_TF32": "0"}) == "fp32"
    assert precision.process_precision({}) == "fp32"
    assert precision.process_precision(precision.env_for("3xtf32")) == "3xtf32"
    assert precision.process_precision({"CUPY_TF32": "1", "SINEBENCH_3XTF32": "1"}) == "tf32"  # CuPy's wins
    gpu, cpu = parse_device_set("0", check=False), parse_device_set("cpu")
    monkeypatch.setenv("CUPY_TF32", "0")
    monkeypatch.delenv("SINEBENCH_3XTF32", raising=False)
    precision.check("fp32", gpu, "sinebench", 5)
    with pytest.raises(precision.PrecisionError, match="start it with CUPY_TF32=1"):
        precision.check("tf32", gpu, "sinebench", 5)
    with pytest.raises(precision.PrecisionError, match="no meaning on the CPU"):
        precision.check("tf32", cpu, "sinebench", 5)
    with pytest.raises(precision.PrecisionError, match="SINEBENCH_3XTF32=1"):
        precision.check("3xtf32", gpu, "graph", 1024)
    monkeypatch.setenv("CUPY_TF32", "1")
    precision.check("tf32", gpu, "sinebench", 5)
    precision.check("fp32", cpu, "sinebench", 5)  # NumPy ignores the variable
    monkeypatch.setenv("CUPY_TF32", "0")
    monkeypatch.setenv("SINEBENCH_3XTF32", "1")
    precision.check("3xtf32", gpu, "graph", 1024)
    with pytest.raises(ValueError, match="unknown precision"):
        replace(BASE, precision="bf16")


@pytest.mark.parametrize("impl,is_gpu,units,refused", [
    ("graph", True, 65, None), ("graph", True, 1024, None),
    ("graph", True, 64, "has none at 64 units or fewer"),  # the persistent kernels: no products to split
    ("sinebench", True, 1024, "--impl graph only"), ("torch-graph", True, 1024, "--impl graph only"),
    ("graph", False, 1024, "no meaning on the CPU")])
def test_3xtf32_runs_where_products_are_split_only(impl, is_gpu, units, refused):
    reason = precision.why_not("3xtf32", impl, is_gpu, units)
    assert reason is None if refused is None else refused in reason


@pytest.mark.parametrize("impl,units,refused", [
    ("sinebench", 5, False), ("torch-graph", 5, False), ("graph", 1024, False),  # CuPy's, PyTorch's, cuBLAS's
    ("graph", 64, True), ("graph", 5, True)])  # the persistent kernels compute in fp32
def test_tf32_runs_where_there_are_matrix_products(impl, units, refused):
    reason = precision.why_not("tf32", impl, True, units)
    assert (reason is not None and "has none at 64 units or fewer" in reason) if refused else reason is None


def test_tolerance_per_precision():
    assert precision.tolerance("fp32") == 1e-5
    assert precision.tolerance("tf32") == 2.0 ** -10  # one TF32 ulp at 1
    assert precision.tolerance("3xtf32") == 1e-5  # held to FP32's tolerance at verify's width


def test_transport_env_is_nccls_switches(monkeypatch):
    base = {"PATH": "/bin", "NCCL_P2P_DISABLE": "1", "NCCL_DEBUG": "WARN"}
    assert transports.env_for("default", base) == base  # the machine's own choice, untouched
    p2p = transports.env_for("p2p", base)
    assert "NCCL_P2P_DISABLE" not in p2p and p2p["NCCL_SHM_DISABLE"] == "1" and p2p["NCCL_NET_DISABLE_INTRA"] == "1"
    shm = transports.env_for("shm", base)
    assert shm["NCCL_P2P_DISABLE"] == "1" and "NCCL_SHM_DISABLE" not in shm
    sock = transports.env_for("socket", base)
    assert {k: sock[k] for k in ("NCCL_P2P_DISABLE", "NCCL_SHM_DISABLE", "NCCL_NET", "NCCL_SOCKET_IFNAME")} == {
        "NCCL_P2P_DISABLE": "1", "NCCL_SHM_DISABLE": "1", "NCCL_NET": "Socket", "NCCL_SOCKET_IFNAME": "lo"}
    assert sock["NCCL_DEBUG"] == "WARN" and sock["PATH"] == "/bin"
    transports.check("socket", sock)
    with pytest.raises(transports.TransportError, match="NCCL_NET"):
        transports.check("socket", shm)
    for key in transports.SWITCHES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CUPY_TF32", "1")
    env = worker_env("fp32", "shm")
    assert env["CUPY_TF32"] == "0" and env["NCCL_P2P_DISABLE"] == "1"


def test_only_nccl_runs_have_a_transport():
    assert transports.applies("0+1", "chainermn")
    assert not transports.applies("0+1", "single-process")
    assert not transports.applies("cpu+cpu", "chainermn")  # MPI on host memory
    assert not transports.applies("0", "single-device")


# -- the grid -------------------------------------------------------------------------
def grid(**kw):
    args = dict(impls=["sinebench"], device_specs=["cpu", "0", "0+1", "0+1+2+3"],
                strategies=["single-process", "chainermn"], batchsizes=[4096], units=[1024], repeats=1,
                precisions=["fp32", "tf32"], transports=["default", "socket"])
    args.update(kw)
    return expand_grid(BASE, **args)


def test_grid_expands_precision_transport_and_weak_scaling():
    specs = grid(batch_per_device=[1024])
    keys = [(s.devices, s.strategy, s.train.precision, s.transport, s.scaling, s.train.batchsize) for s in specs]
    assert len(keys) == len(set(keys))
    # CPU: fp32 only; one GPU and single-process: default transport only; chainermn GPU sets: both.
    assert {k[2] for k in keys if k[0] == "cpu"} == {"fp32"}
    assert {k[3] for k in keys if k[1] != "chainermn"} == {"default"}
    assert {(k[2], k[3]) for k in keys if k[0] == "0+1+2+3" and k[1] == "chainermn"} == {
        ("fp32", "default"), ("fp32", "socket"), ("tf32", "default"), ("tf32", "socket")}
    # weak: batch per device times the devices
    assert {(k[0], k[5]) for k in keys if k[4] == "weak"} == {("cpu", 1024), ("0", 1024), ("0+1", 2048),
                                                               ("0+1+2+3", 4096)}
    # cpu 1x2, 0 2x2, 0+1 and 0+1+2+3: (sp 2 + mn 4) x 2 each
    assert len(specs) == 2 + 4 + 12 + 12
    sets = [parse_device_set(s, check=False) for s in ["cpu", "0", "0+1", "0+1+2+3"]]
    assert grid_size(impls=["sinebench"], device_sets=sets, strategies=["single-process", "chainermn"],
                     batchsizes=[4096], units=[1024], repeats=1, precisions=["fp32", "tf32"],
                     transports=["default", "socket"], batch_per_device=[1024]) == len(specs)


def test_runs_share_a_worker_only_with_the_same_launch_environment():
    mn = RunSpec(BASE, "0+1", "chainermn")
    assert launch_key(mn) == (2, "fp32", "default")
    assert launch_key(replace(mn, train=replace(BASE, precision="tf32"))) != launch_key(mn)
    assert launch_key(replace(mn, transport="socket")) != launch_key(mn)
    assert launch_key(RunSpec(BASE, "0", "single-device")) == launch_key(RunSpec(BASE, "cpu", "single-device"))
    # the grid puts runs of one environment next to each other: 14 workers for the 28 runs
    # ([cpu, 0 fp32], [0 tf32], 0+1 single-process x 2 precisions, chainermn x 2 x 2 transports,
    # 0+1+2+3 single-process x 2, and its chainermn runs x 4 environments)
    keys = [launch_key(s) for s in grid()]
    assert sum(1 for i, k in enumerate(keys) if i == 0 or k != keys[i - 1]) == 14


def test_skipped_says_why():
    sets = [parse_device_set(s, check=False) for s in ["cpu", "0+1"]]
    lines = skipped(sets, ["single-process", "chainermn"], ["fp32", "tf32"], ["default", "socket"])
    assert "tf32 not run on cpu" in lines[0] and "0+1 (chainermn)" in lines[1]
    assert skipped(sets, ["single-process"], ["fp32"], ["default"]) == []


def test_3xtf32_in_the_grid_is_graphs_on_gpus_and_unavailable_without_products():
    sets = [parse_device_set(s, check=False) for s in ["cpu", "0", "0+1"]]
    args = dict(impls=["sinebench", "graph"], strategies=["chainermn"], batchsizes=[64], units=[5, 1024],
                repeats=1, precisions=["fp32", "3xtf32"])
    specs = expand_grid(BASE, device_specs=[d.spec for d in sets], **args)
    split = [s for s in specs if s.train.precision == "3xtf32"]
    assert {(s.train.impl, s.devices) for s in split} == {("graph", "0"), ("graph", "0+1")}
    assert {s.train.n_units: why_not(s) for s in split}[1024] is None
    assert "has none at 64 units" in {s.train.n_units: why_not(s) for s in split}[5]  # one unavailable row each
    assert grid_size(device_sets=sets, **args) == len(specs)
    lines = skipped(sets, ["chainermn"], ["fp32", "3xtf32"], ["default"], ["sinebench", "graph"])
    assert "3xtf32 not run on cpu" in lines[0] and "3xtf32 not run with sinebench" in lines[1]
    assert launch_key(split[0]) != launch_key(replace(split[0], train=replace(split[0].train, precision="fp32")))
    assert "-3xtf32-" in split[0].run_id


def test_run_ids_of_older_folders_are_kept():
    # the id this configuration had before the scaling axes and the host-speed
    # gate existed: its runs were timed without the gate
    ungated = RunSpec(replace(BASE, budget=replace(BASE.budget, host_gate=None)), "0+1", "chainermn")
    assert ungated.run_id == "sinebench-chainermn-0+1-b10-u32-s200-r0-123faf31"
    assert RunSpec(BASE, "0+1", "chainermn").run_id != ungated.run_id  # gated (the default): another run
    other = RunSpec(replace(BASE, precision="tf32"), "0+1", "chainermn", transport="socket", scaling="weak")
    assert "-tf32-socket-weak-r0-" in other.run_id and "tf32 socket weak" in other.label
    assert RunSpec.from_dict(other.to_dict()) == other


def test_an_indivisible_batch_is_one_unavailable_row_without_a_worker(tmp_path):
    bad = RunSpec(replace(BASE, batchsize=10), "cpu+cpu+cpu+cpu", "chainermn")
    assert "not divisible by the 4 devices" in why_not(bad)
    assert why_not(RunSpec(replace(BASE, batchsize=12), "cpu+cpu+cpu+cpu", "chainermn")) is None
    ((spec, row, side),) = list(run_all([bad], tmp_path / "work"))
    assert spec == bad and row.status == "unavailable" and "not divisible" in row.message and side == {}
    assert not (tmp_path / "work").exists()  # no worker was started


def test_new_columns_and_legacy_folders(tmp_path):
    row = RunRow.failure(RunSpec(replace(BASE, precision="tf32"), "0+1", "chainermn", transport="shm",
                                 scaling="weak"), "error", "x")
    assert (row.precision, row.transport, row.scaling) == ("tf32", "shm", "weak")
    new = ["precision", "transport", "scaling", "host_wait_s", "host_slow", "host_probe_ms",
           "host_probe_slowest_ms", "host_gate", "grad_error"]
    assert RunRow.columns()[-len(new):] == new
    # a folder written before the columns existed reads as fp32 / default / strong
    old = [c for c in RunRow.columns() if c not in new]
    values = {**asdict(RunRow.failure(RunSpec(BASE, "cpu", "single-device"), "error", "old"))}
    (tmp_path / "runs.csv").write_text(",".join(old) + "\n" + ",".join(
        "" if values[c] is None else str(values[c]) for c in old) + "\n")
    runs = ResultStore(tmp_path).load()["runs"]
    assert (runs["precision"].tolist(), runs["transport"].tolist(), runs["scaling"].tolist()) == (
        ["fp32"], ["default"], ["strong"])
    assert runs["host_slow"].isna().all()  # no gate then: nothing to say about it
    assert runs["host_probe_ms"].isna().all() and runs["host_gate"].isna().all()
    assert runs["host_probe_slowest_ms"].isna().all()
    assert runs["grad_error"].isna().all() and aggregate(runs)["grad_error"].isna().all()


# -- facts on synthetic rows ------------------------------------------------------------
# ms per update: (devices, strategy, precision, transport, scaling, batch, n_units) -> ms
MS = {
    ("cpu", "single-device", "fp32", "default", "strong", 10, 5): 2.0,
    ("cpu", "single-device", "fp32", "default", "strong", 4096, 1024): 5000.0,
    ("0", "single-device", "fp32", "default", "strong", 10, 5): 3.0,
    ("0", "single-device", "fp32", "default", "strong", 4096, 1024): 20.0,
    ("0", "single-device", "tf32", "default", "strong", 10, 5): 3.0,
    ("0", "single-device", "tf32", "default", "strong", 4096, 1024): 5.0,
    ("0+1", "chainermn", "fp32", "default", "strong", 10, 5): 3.3,
    ("0+1", "chainermn", "fp32", "default", "strong", 4096, 1024): 11.0,
    ("0+1", "chainermn", "fp32", "socket", "strong", 10, 5): 6.0,
    ("0+1", "chainermn", "fp32", "socket", "strong", 4096, 1024): 25.0,
    ("0+1", "chainermn", "fp32", "shm", "strong", 4096, 1024): 12.5,
    ("0+1", "chainermn", "tf32", "default", "strong", 4096, 1024): 5.0,
    ("0+1+2+3", "chainermn", "fp32", "default", "strong", 4096, 1024): 6.25,
    ("0+1+2+3", "chainermn", "tf32", "default", "strong", 4096, 1024): 4.0,
    ("0", "single-device", "fp32", "default", "weak", 1024, 1024): 8.0,
    ("0+1", "chainermn", "fp32", "default", "weak", 2048, 1024): 10.0,
    ("0+1+2+3", "chainermn", "fp32", "default", "weak", 4096, 1024): 16.0,
}


def rows() -> list:
    out = []
    for i, ((devices, strategy, prec, link, scaling, b, n), ms) in enumerate(MS.items()):
        out.append(synthetic_row({
            "run_id": f"r{i}", "impl": "sinebench", "devices": devices, "n_devices": len(devices.split("+")),
            "strategy": strategy, "batchsize": b, "n_units": n, "seqlen": 10, "repeat": 0, "status": "ok",
            "updates": 100, "ms_per_update_median": ms, "ms_per_update_p25": ms, "ms_per_update_p75": ms,
            "samples_per_s": b / ms * 1e3, "flops_per_update": count_flops(n, b, 10, "sinebench"),
            "target_mse": 1e-3, "gpu_name": "" if devices == "cpu" else "Fake GPU", "precision": prec,
            "transport": link, "scaling": scaling}))
    return out


def agg():
    return aggregate(pd.DataFrame([asdict(r) for r in rows()]))


def test_baseline_keeps_the_other_facts_on_fp32_default_strong():
    main = fs.baseline(agg())
    assert set(main["precision"]) == {"fp32"} and set(main["transport"]) == {"default"}
    assert set(main["scaling"]) == {"strong"}
    assert len(main) == 7  # cpu 2, 0 2, 0+1 2, 0+1+2+3 1


def test_strong_and_weak_curves():
    a = agg()
    assert fs.has_scaling(a)
    c = fs.curves(a).set_index(["scaling", "strategy", "precision", "size", "n_devices"]).sort_index()
    strong = c.loc[("strong", "chainermn", "fp32", "b4096, n1024")]
    assert strong.loc[1, "speedup"] == 1.0
    assert strong.loc[2, "speedup"] == pytest.approx(20 / 11)  # 1.818x
    assert strong.loc[2, "efficiency"] == pytest.approx(20 / 11 / 2)
    assert strong.loc[4, "speedup"] == pytest.approx(3.2)  # 20 / 6.25
    assert strong.loc[4, "efficiency"] == pytest.approx(0.8)
    tf = c.loc[("strong", "chainermn", "tf32", "b4096, n1024")]
    assert tf.loc[2, "speedup"] == pytest.approx(1.0) and tf.loc[4, "speedup"] == pytest.approx(1.25)
    weak = c.loc[("weak", "chainermn", "fp32", "b1024/device, n1024")]
    assert weak.loc[2, "speedup"] == pytest.approx(1.6)  # 2 x 8 / 10
    assert weak.loc[4, "speedup"] == pytest.approx(2.0)  # 4 x 8 / 16
    assert weak.loc[4, "efficiency"] == pytest.approx(0.5)
    best = {(b.scaling, b.precision): b for b in fs.best_at_most_devices(fs.curves(a))}
    assert best[("strong", "fp32")].speedup == pytest.approx(3.2) and best[("strong", "fp32")].n_devices == 4
    assert best[("weak", "fp32")].efficiency == pytest.approx(0.5)


def test_a_strong_speedup_splits_into_the_batch_share_and_communication():
    ls = fs.strong_losses(agg())
    # Only 4 GPUs in fp32 have one GPU at their share (1024) too; 2 GPUs (2048) and tf32 do not.
    assert list(zip(ls["devices"], ls["precision"])) == [("0+1+2+3", "fp32")]
    r = ls.iloc[0]
    assert r["bound"] == pytest.approx(20 / 8)  # one GPU at 4096 against at 1024: 2.5x at most
    assert r["batch_efficiency"] == pytest.approx(2.5 / 4)
    assert r["parallel_efficiency"] == pytest.approx(8 / 6.25)  # faster than the share alone: > 1
    assert r["speedup"] == pytest.approx(4 * r["batch_efficiency"] * r["parallel_efficiency"])
    (text,) = sentences_scaling.losses(ls)
    assert "4 GPUs (chainermn) (fp32, b4096, n1024) are 3.2× one GPU and not 4×" in text
    assert "(1024) is 62% as efficient per sample as at 4096, which caps the speedup at 2.5×" in text
    assert "the set beat that cap by 28.0%" in text
    slower = agg().assign(ms=lambda a: a["ms"].where(a["devices"] != "0+1+2+3", a["ms"] * 1.6))
    (text,) = sentences_scaling.losses(fs.strong_losses(slower))
    assert "communication and synchronization keep 80.0% of that cap" in text  # 8 / 10 in fp32


def rows_with_a_share(ms=10.5, devices=("0", "0+1"), cpu_share=False) -> list:
    """The synthetic rows of one and two devices, with one GPU (and, if asked,
    one CPU) at the two devices' share of batch 4096 too."""
    out = [r for r in rows() if r.devices in ("cpu", "cpu+cpu", *devices) and r.scaling == "strong"]
    extra = [replace(out[0], run_id="share", devices="0", n_devices=1, strategy="single-device", batchsize=2048,
                     n_units=1024, precision="fp32", transport="default", scaling="strong",
                     ms_per_update_median=ms, ms_per_update_p25=ms, ms_per_update_p75=ms)]
    if cpu_share:
        for run_id, devices, n, strategy, b, t in (("c1", "cpu", 1, "single-device", 2048, 100.0),
                                                   ("c2", "cpu+cpu", 2, "chainermn", 4096, 150.0)):
            extra.append(replace(extra[0], run_id=run_id, devices=devices, n_devices=n, strategy=strategy,
                                 batchsize=b, gpu_name="", ms_per_update_median=t, ms_per_update_p25=t,
                                 ms_per_update_p75=t))
    return out + extra


def test_the_split_takes_gpus_at_the_default_transport_only():
    a = aggregate(pd.DataFrame([asdict(r) for r in rows_with_a_share(cpu_share=True)]))
    ls = fs.strong_losses(a)
    # 0+1 ran at default, socket and shm; CPU replicas share the machine's cores: neither counts.
    assert list(zip(ls["devices"], ls["strategy"])) == [("0+1", "chainermn")]
    assert ls["bound"].iloc[0] == pytest.approx(20 / 10.5)
    assert ls["parallel_efficiency"].iloc[0] == pytest.approx(10.5 / 11)


def write_rows(folder, run_rows):
    store = ResultStore(folder)
    store.open_for_writing()
    for r in run_rows:
        store.append_run(r, {})
    store.close()


def test_a_sweep_of_one_and_two_gpus_alone_shows_the_split(tmp_path):
    write_rows(tmp_path, rows_with_a_share())
    html = render(tmp_path, tmp_path / "out" / "report.html").read_text()
    assert "Scaling with the number of devices" in html and "kept of the cap" in html
    assert "2 GPUs (chainermn) (fp32, b4096, n1024) are 1.82× one GPU and not 2×" in html
    assert "caps the speedup at 1.9×; communication and synchronization keep 95.5% of that cap" in html
    assert not (tmp_path / "out" / "figures" / "scaling_strong_gpu.png").exists()  # no curve: one count


def test_two_device_counts_alone_are_not_a_curve():
    a = agg()
    only_two = a[(a["n_devices"] < 4) & (a["scaling"] == "strong")]
    assert not fs.has_scaling(only_two)


def test_precision_speedup_and_crossover_per_precision():
    ps = fs.precision_speedup(agg()).set_index(["devices", "batchsize"])
    assert ps.loc[("0", 4096), "speedup"] == pytest.approx(4.0)  # 20 / 5
    assert ps.loc[("0", 10), "speedup"] == pytest.approx(1.0)  # fixed cost: nothing to gain
    assert ps.loc[("0+1", 4096), "speedup"] == pytest.approx(2.2)  # 11 / 5
    assert ps.loc[("0+1+2+3", 4096), "speedup"] == pytest.approx(1.5625)  # 6.25 / 4
    f1, f2 = count_flops(5, 10, 10, "sinebench"), count_flops(1024, 4096, 10, "sinebench")

    def line(t1, t2):  # two points: the fit is the line through them
        slope = (t2 - t1) / (f2 - f1)
        return t1 - slope * f1, slope

    cpu = line(2.0, 5000.0)
    by = {c.precision: c for c in fs.precision_crossovers(agg())}
    for prec, (t1, t2) in {"fp32": (3.0, 20.0), "tf32": (3.0, 5.0)}.items():
        gpu = line(t1, t2)
        assert by[prec].gpu.fixed_ms == pytest.approx(gpu[0])
        assert by[prec].flops == pytest.approx((gpu[0] - cpu[0]) / (cpu[1] - gpu[1]), rel=1e-6)
    assert by["tf32"].flops < by["fp32"].flops  # a cheaper FLOP crosses earlier
    # measured: the CPU wins at b10/n5 (2 < 3 ms), the GPU at b4096/n1024, in both precisions
    for prec in ("fp32", "tf32"):
        m = by[prec].measured
        assert (m.cells, m.cpu_wins_up_to, m.gpu_wins_from, m.first_win) == (2, f1, f2, (4096, 1024))


def test_each_other_precision_against_fp32_in_its_own_rows_and_sentence():
    one = [r for r in rows() if r.devices == "0" and r.precision == "fp32" and r.scaling == "strong"]
    split = [replace(r, run_id=f"x{i}", precision="3xtf32", ms_per_update_median=r.ms_per_update_median / m)
             for i, (r, m) in enumerate(zip(one, (1.0, 1.6)))]  # b10: nothing to gain; b4096: 1.6x
    a = aggregate(pd.DataFrame([asdict(r) for r in rows() + split]))
    ps = fs.precision_speedup(a)
    assert list(dict.fromkeys(ps["precision"])) == ["tf32", "3xtf32"]  # PRECISIONS' order
    x = ps[ps["precision"] == "3xtf32"].set_index("batchsize")
    assert x.loc[4096, "speedup"] == pytest.approx(1.6) and x.loc[10, "speedup"] == pytest.approx(1.0)
    text = " ".join(sentences_scaling.precision(ps, []))
    assert "3xTF32 (near FP32's accuracy: three TF32 products of split operands) is 1.6× fp32 at best" in text
    assert "tf32 and 3xtf32 speed up matrix products only" in text
    assert fs.precision_speedup(a[a["precision"] != "tf32"])["precision"].unique().tolist() == ["3xtf32"]
    assert fs.precision_speedup(a[a["precision"] == "fp32"]).empty


def test_each_precisions_exactness_in_a_sentence_where_measured():
    err = {"fp32": 4e-7, "tf32": 2.8e-4}
    measured = [replace(r, grad_error=err[r.precision]) if r.devices == "0" and r.repeat == 0 else r
                for r in rows()]
    ps = fs.precision_speedup(aggregate(pd.DataFrame([asdict(r) for r in measured])))
    big = ps[(ps["devices"] == "0") & (ps["batchsize"] == 4096)].iloc[0]
    assert (big["fp32_grad_error"], big["grad_error"]) == (4e-7, 2.8e-4)
    text = " ".join(sentences_scaling.precision(ps, []))
    assert "is fp32 4.0e-07, tf32 2.8e-04 (1 GPU, b4096, n1024)" in text
    # a folder without the column (or runs that did not measure it) says nothing of exactness
    assert "exactness" not in " ".join(sentences_scaling.precision(fs.precision_speedup(agg()), []))


def test_a_gated_out_repeat_0_keeps_its_gradient_error():
    """The host gate leaves a slow repeat's time out; its first gradient's
    error is arithmetic and stays."""
    first = rows()[0]
    gated = dict(host_gate=0.2)
    repeats = [replace(first, run_id="a", repeat=0, grad_error=1e-6, host_probe_ms=2.0, **gated),
               replace(first, run_id="b", repeat=1, host_probe_ms=1.0, ms_per_update_median=5.0, **gated),
               replace(first, run_id="c", repeat=2, host_probe_ms=1.0, ms_per_update_median=5.0, **gated)]
    a = aggregate(pd.DataFrame([asdict(r) for r in repeats]))
    assert a["repeats"].tolist() == [2] and a["grad_error"].tolist() == [1e-6]


def test_transport_speedup_marks_where_a_socket_loses():
    ts = fs.transport_speedup(agg()).set_index(["devices", "transport", "precision", "batchsize"]).sort_index()
    assert ts.loc[("0+1", "socket", "fp32", 4096), "speedup"] == pytest.approx(0.8)  # 20 / 25
    assert ts.loc[("0+1", "socket", "fp32", 4096), "loses"]
    assert ts.loc[("0+1", "shm", "fp32", 4096), "speedup"] == pytest.approx(1.6)
    assert not ts.loc[("0+1", "default", "fp32", 4096), "loses"]
    assert ts.loc[("0+1+2+3", "default", "tf32", 4096), "speedup"] == pytest.approx(1.25)
    losses = fs.link_losses(fs.transport_speedup(agg()))
    # b10: the socket loses (0.5x) but so does the default (3 / 3.3): not the link's doing
    assert list(zip(losses["batchsize"], losses["speedup"])) == [(4096, pytest.approx(0.8))]
    assert losses["default"].iloc[0] == pytest.approx(20 / 11)


# -- bus bandwidth ----------------------------------------------------------------------
def test_bus_bandwidth_as_nccl_tests_define_it():
    # 256 MiB in 1 ms over 4 ranks: algbw 268 GB/s, busbw x 2 * 3 / 4
    assert busbw.bus_bandwidth(256 << 20, 1e-3, 4) == pytest.approx((256 << 20) / 1e-3 * 1.5)
    s = busbw.summarize(2, {4: 20e-6, 256 << 20: 2e-3})
    assert s["latency_us"] == pytest.approx(20) and s["busbw_GBps"] == pytest.approx((256 << 20) / 2e-3 / 1e9)
    log = ("h:1:2 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via NET/Socket/0\n"
           "h:1:2 [0] NCCL INFO Channel 01/0 : 0[0] -> 1[1] via NET/Socket/0\n"
           "h:1:2 [1] NCCL INFO Channel 00/0 : 1[1] -> 0[0] via SHM/direct/direct\n")
    assert busbw.nccl_paths(log) == ["NET/Socket/0", "SHM/direct/direct"]


def test_bus_bandwidth_is_skipped_without_nccl_runs():
    cpu = grid(device_specs=["cpu", "cpu+cpu"])
    assert busbw.plan(cpu) == []
    assert busbw.for_sweep(cpu)["status"] == "skipped"
    # one measurement per (GPU count, transport), of the first set of that count
    assert busbw.plan(grid(precisions=["fp32", "tf32"])) == [("0+1", "default"), ("0+1", "socket"),
                                                           ("0+1+2+3", "default"), ("0+1+2+3", "socket")]


@pytest.mark.mpi
def test_bus_bandwidth_failure_is_recorded_with_why(tmp_path):
    """Without CuPy the MPI job fails; the sweep keeps its last words."""
    pytest.importorskip("mpi4py")
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed: the GPU tests measure for real")
    except ImportError:
        pass
    res = busbw.measure("0+1", "socket", tmp_path)
    assert res["status"] == "failed" and "cupy" in res["why"], res
    assert list(tmp_path.iterdir()) == []


# -- the report -------------------------------------------------------------------------
def make_scaling_results(folder):
    write_rows(folder, rows())
    results = [{"devices": "0+1", "transport": t, "status": "ok", "latency_us": lat, "busbw_GBps": bw,
                "nccl_paths": [p]} for t, lat, bw, p in (("default", 12.0, 350.0, "P2P/CUMEM/read"),
                                                        ("socket", 80.0, 4.2, "NET/Socket/0"))]
    (folder / "env.json").write_text(json.dumps({"command": "sinebench sweep", "busbw": {
        "status": "measured", "results": results}, "gpu": {"devices": [{"id": i, "name": "Fake GPU"}
                                                                        for i in range(4)]}}))


def test_report_has_the_scaling_sections(tmp_path):
    make_scaling_results(tmp_path)
    sw = facts.sweep(ResultStore(tmp_path).load())
    assert set(sw.main["precision"]) == {"fp32"} and set(sw.main["scaling"]) == {"strong"}
    html = render(tmp_path, tmp_path / "out" / "report.html").read_text()
    figures = {p.stem for p in (tmp_path / "out" / "figures").glob("*.png")}
    assert {"scaling_strong_gpu", "scaling_weak_gpu", "precision", "transports"} <= figures
    for text in ("Scaling with the number of devices", "tf32 against fp32", "What the link between GPUs does",
                 "4 GPUs with chainermn in fp32 are 3.2× one GPU at b4096, n1024 (80% efficiency)",
                 "Over sockets, 2 GPUs lose to one at b4096, n1024 (fp32): 0.8×",
                 "TF32 (10-bit inputs to the tensor cores) is 4× fp32 at best",
                     "NET/Socket/0",
                 "Measured, one GPU in tf32 against the CPU over 2 sizes: the GPU wins every size above",
                 "which caps the speedup at 2.5×", "kept of the cap"):
        assert text in html, text


# -- the command line, on the CPU ---------------------------------------------------------
def test_sweep_weak_scaling_and_an_indivisible_batch_end_to_end(tmp_path):
    from tests.helpers import sinebench

    out = tmp_path / "res"
    proc = sinebench("sweep", "--devices", "cpu,cpu+cpu", "--batchsize", "9", "--batch-per-device", "4",
                     "--units", "5", "--recipe", "article", "--full-budget", "--updates", "20", "--max-seconds", "1",
                     "--warmup", "1", "--eval-every", "10", "--repeats", "1", "--precision", "fp32,tf32",
                     "--transport", "default,socket", "--no-progress", "--no-report", "--out", out,
                     "--host-gate", "off")  # the axes are tested, not the gate (a loaded host may stop a run)
    assert proc.returncode == 0, proc.stderr
    assert "tf32 not run on cpu, cpu+cpu" in proc.stderr
    assert "batch size 9 is not divisible by the 2 devices of 'cpu+cpu': recorded as unavailable" in proc.stderr
    runs = pd.read_csv(out / "runs.csv")
    got = sorted(zip(runs["devices"], runs["batchsize"], runs["scaling"], runs["status"]))
    assert got == [("cpu", 4, "weak", "ok"), ("cpu", 9, "strong", "ok"), ("cpu+cpu", 8, "weak", "ok"),
                   ("cpu+cpu", 9, "strong", "unavailable")]
    assert set(runs["precision"]) == {"fp32"} and set(runs["transport"]) == {"default"}
    env = json.loads((out / "env.json").read_text())
    (record,) = env["invocations"].values()
    assert record["busbw"]["status"] == "skipped" and "NCCL" in record["busbw"]["why"]


@pytest.mark.parametrize("args,message", [
    (["train", "--devices", "cpu", "--precision", "tf32"], "no meaning on the CPU"),
    (["train", "--precision", "fp32,tf32"], "one precision"),
    (["sweep", "--devices", "cpu", "--precision", "tf32"], "nothing to run: tf32 not run on cpu"),
    (["sweep", "--devices", "cpu", "--precision", "bf16"], "unknown value 'bf16'"),
    (["sweep", "--devices", "cpu", "--transport", "ib"], "unknown value 'ib'"),
    (["sweep", "--devices", "cpu", "--batch-per-device", "0"], "must be positive"),
    (["verify", "--devices", "cpu+cpu", "--precision", "tf32"], "nothing to check: tf32 not checked on cpu+cpu"),
    (["verify", "--devices", "cpu+cpu", "--impl", "graph"], "graph not checked on cpu+cpu with single-process"),
])
def test_bad_axis_input_one_line_exit_2(tmp_path, args, message):
    """One line: when nothing is left, the reasons are in the error (not
    also in a warning before it)."""
    from tests.helpers import sinebench

    proc = sinebench(*args, *(["--out", tmp_path / "o"] if args[0] != "verify" else []))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_verify_states_the_precisions_tolerance_and_skips_tf32_on_the_cpu():
    from tests.helpers import sinebench

    proc = sinebench("verify", "--devices", "cpu+cpu", "--precision", "fp32,tf32", "--updates", "5")
    assert proc.returncode == 0, proc.stderr
    assert "tf32 not checked on cpu+cpu" in proc.stderr
    (line,) = proc.stdout.strip().splitlines()
    assert "fp32" in line and "PASS (tolerance 1e-05 for fp32)" in line


def test_sweep_dry_run_shows_the_axes(tmp_path):
    from tests.helpers import sinebench

    proc = sinebench("sweep", "--devices", "cpu,cpu+cpu", "--strategy", "single-process,chainermn",
                     "--batchsize", "9", "--batch-per-device", "4", "--units", "5", "--repeats", "1", "--dry-run",
                     "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    assert "b=8 n=5 weak #0" in proc.stdout
    assert "cannot run: batch size 9 is not divisible" in proc.stdout
    assert not (tmp_path / "o").exists()


@pytest.mark.mpi
def test_the_4_gpu_script_runs_end_to_end_on_the_cpu(tmp_path):
    """scripts/gpu_scale.sh with CPU_ONLY=1: its dry run shows every step's
    grid; its strong and weak steps and the report run (cpu and cpu+cpu,
    both implementations and strategies). The other steps are the same
    sweep with other sizes and transports: their dry run checks their
    arguments, and running them too cost CI half a minute."""
    import os
    import subprocess

    pytest.importorskip("mpi4py")
    from tests.helpers import PROJECT_ROOT, cli_env

    env = {**cli_env(), "CPU_ONLY": "1", "RES": str(tmp_path / "res"), "REPORT": "1"}
    dry = subprocess.run(["bash", "scripts/gpu_scale.sh"], env={**env, "DRY_RUN": "1"}, capture_output=True,
                         text=True, cwd=PROJECT_ROOT, timeout=300)
    assert dry.returncode == 0, dry.stderr
    assert "2 CPU replicas (chainermn) article T=10 b=32 n=32 weak #0" in dry.stdout
    assert "2 CPU replicas (chainermn) · graph article T=10 b=32 n=32 weak #0" in dry.stdout
    assert dry.stdout.count("runs to do") == 5 and not (tmp_path / "res").exists()
    assert "CPU · graph article T=10 b=32 n=32 #0" in dry.stdout  # the share of b64 that each of 2 gets
    proc = subprocess.run(["bash", "scripts/gpu_scale.sh"], env={**env, "ONLY": "strong,weak"},
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs = pd.read_csv(tmp_path / "res" / "runs.csv")
    assert len(runs) == 10 and (runs["status"] == "ok").all(), runs[["run_id", "message"]]
    assert set(runs["impl"]) == {"sinebench", "graph"}
    assert runs["host_gate"].isna().all()  # the script's default: the gate off
    assert {"scaling_weak_cpu.png", "scaling_strong_cpu.png"} <= set(os.listdir(tmp_path / "res" / "figures"))
    html = (tmp_path / "res" / "report.html").read_text()
    assert "Scaling with the number of devices" in html


def test_verify_checks_3xtf32_on_graphs_cublas_path_only():
    from bench.verifying import GEMM_UNITS, combinations

    sets = [parse_device_set(s, check=False) for s in ["cpu+cpu", "0", "0+1"]]
    checks, left_out = combinations(sets, ["chainermn"], ["sinebench", "graph"], ["article"], ["fp32", "3xtf32"])
    split = [(ds.spec, im, units) for ds, _, im, _, prec, _, units in checks if prec == "3xtf32"]
    assert split == [("0", "graph", GEMM_UNITS), ("0+1", "graph", GEMM_UNITS)]
    assert any(line.startswith("3xtf32 not checked on cpu+cpu") and "no meaning on the CPU" in line
               for line in left_out)
    assert any(line.startswith("3xtf32 not checked on 0+1 with sinebench") for line in left_out)
    assert not any(" on 0 with graph" in line or " on 0+1 with graph" in line for line in left_out)  # n96 covers n5


def test_verify_units_replace_the_default_widths():
    from bench.verifying import combinations

    sets = [parse_device_set(s, check=False) for s in ["cpu+cpu", "0"]]
    checks, left_out = combinations(sets, ["chainermn"], ["sinebench", "graph"], ["article"], ["fp32", "3xtf32"],
                                    ["sgd", "adam"], units=[32, 1024])
    got = sorted({(ds.spec, im, prec, width) for ds, _, im, _, prec, _, width in checks})
    assert got == [("0", "graph", "3xtf32", 1024), ("0", "graph", "fp32", 32), ("0", "graph", "fp32", 1024),
                   ("cpu+cpu", "graph", "fp32", 32), ("cpu+cpu", "graph", "fp32", 1024),
                   ("cpu+cpu", "sinebench", "fp32", 32), ("cpu+cpu", "sinebench", "fp32", 1024)]
    narrow, left_out = combinations(sets[1:], ["chainermn"], ["graph"], ["quality_small"], ["fp32"], ["adam"],
                                    units=[32, 1024])
    assert [c[-1] for c in narrow] == [32] and "n_units 1024 not checked with quality_small" in left_out[0]
