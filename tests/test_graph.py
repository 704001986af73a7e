"""The graph implementation: the compiled update must train exactly the
model the eager path trains — on the CPU here (Numba), on GPUs where there
are some (the captured CUDA graph), one device per process under MPI too."""
import dataclasses
import subprocess
import sys

import numpy as np
import pytest

import sinelstm  # noqa: F401
from sinelstm import precision
from sinelstm.config import Budget, TrainConfig
from sinelstm.devices import parse_device_set
from sinelstm.flat import FlatState, offsets
from sinelstm.graph import PATH_CPU, PATH_EAGER, PATH_GEMM, PATH_GPU, compiled_path
from sinelstm.graph_cuda import MAX_UNITS
from sinelstm.recipes import RECIPES
from sinelstm.strategy import SingleProcess
from sinelstm.train import train
from sinelstm.verify import TOLERANCE, max_param_diff, trained_params, verify, verify_config

from tests.helpers import PROJECT_ROOT, cli_env

CPU = SingleProcess(parse_device_set("cpu"))


def _pair(cfg, device=CPU):
    graph = trained_params(cfg, device)
    eager = trained_params(dataclasses.replace(cfg, impl="sinebench"), device)
    return graph, eager


@pytest.mark.parametrize("recipe", ["article", "quality", "quality_small"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_compiled_cpu_update_equals_eager(recipe, optimizer):
    """Burn-in, the lr schedule and gradient clipping (quality_small) are in
    the compiled loops too; 20 updates, from the same weights and batches."""
    cfg = verify_config(impl="graph", n_devices=1, recipe=RECIPES[recipe], optimizer=optimizer)
    graph, eager = _pair(cfg)
    one_update = trained_params(dataclasses.replace(cfg, budget=Budget(updates=1, warmup=0)), CPU)
    assert max_param_diff(graph, eager) <= TOLERANCE
    assert max_param_diff(graph, one_update) > 100 * TOLERANCE  # the check compares trained models


def test_a_wrong_gradient_is_caught():
    """The comparison can fail: a compiled update that drops the output
    bias's gradient trains a different model."""
    from sinelstm import graph_cpu

    backward = graph_cpu.backward

    def broken(series, offs, T, p, g, o, n, *rest):
        backward(series, offs, T, p, g, o, n, *rest)
        g[o[6]] = 0.0

    graph_cpu.backward = broken
    try:
        graph, eager = _pair(verify_config(impl="graph", n_devices=1))
    finally:
        graph_cpu.backward = backward
    assert max_param_diff(graph, eager) > TOLERANCE


def test_model_and_optimizer_are_views_of_the_flat_buffers():
    """Evaluation and checkpoints read the Chainer model: it must see every
    compiled update the moment it lands."""
    from sinelstm.model import SineLSTM
    from sinelstm.updaters import make_optimizer

    model = SineLSTM(7, seed=3)
    before = {k: p.array.copy() for k, p in model.namedparams()}
    opt = make_optimizer("adam")
    opt.setup(model)
    flat = FlatState(model, opt, np)
    assert flat.params.size == offsets(7)["size"] == sum(v.size for v in before.values())
    flat.params += 1.0
    for name, param in model.namedparams():
        np.testing.assert_array_equal(param.array, before[name] + 1.0)
        assert np.shares_memory(param.grad, flat.grads)
        assert np.shares_memory(param.update_rule.state["m"], flat.m)


def test_the_path_follows_the_size():
    assert compiled_path(False, 5) == PATH_CPU
    assert compiled_path(True, MAX_UNITS) == PATH_GPU
    assert compiled_path(True, MAX_UNITS + 1) == PATH_GEMM
    assert compiled_path(False, MAX_UNITS + 1) == PATH_EAGER


def test_a_large_model_runs_eagerly_on_the_cpu_and_says_so():
    cfg = TrainConfig(n_units=MAX_UNITS + 1, recipe=RECIPES["article"], impl="graph", eval_every=5,
                      budget=Budget(updates=5, warmup=0))
    assert train(cfg, CPU).path == PATH_EAGER


def test_training_records_the_compiled_path_and_its_optimizer_state():
    cfg = TrainConfig(n_units=5, recipe=RECIPES["quality"], impl="graph", eval_every=30,
                      budget=Budget(updates=60, warmup=2))
    res = train(cfg, CPU)
    assert res.path == PATH_CPU and res.updates == 60
    assert res.curve[-1]["train_loss"] < res.curve[0]["train_loss"] * 2  # finite, training
    eager = train(dataclasses.replace(cfg, impl="sinebench"), CPU)
    assert res.curve[-1]["train_loss"] == pytest.approx(eager.curve[-1]["train_loss"], rel=1e-4)


def test_several_devices_in_one_process_are_refused():
    with pytest.raises(ValueError, match="one device per process"):
        SingleProcess(parse_device_set("cpu+cpu")).make_updater(verify_config(impl="graph"))


@pytest.mark.mpi
def test_one_process_per_cpu_equals_eager():
    """The MPI all-reduce between the compiled loops (chainermn on cpu+cpu)."""
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "verify", "--devices", "cpu+cpu", "--strategy",
                           "chainermn", "--impl", "graph", "--optimizer", "sgd,adam"], capture_output=True,
                          text=True, env=cli_env(), cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASS") == 2


def test_verify_checks_both_gpu_paths_of_graph():
    """n_units 5 (persistent kernels) and 96 (captured cuBLAS) on a GPU set;
    the CPU has one compiled path."""
    from bench.verifying import combinations

    gpu, cpu = parse_device_set("0+1", check=False), parse_device_set("cpu+cpu")
    checks, _ = combinations([gpu, cpu], ["chainermn"], ["graph", "sinebench"], ["article"], ["fp32"])
    units = sorted((ds.spec, im, combo[-1]) for ds, _, im, *combo in checks)
    assert units == [("0+1", "graph", 5), ("0+1", "graph", 96), ("0+1", "sinebench", 5),
                     ("cpu+cpu", "graph", 5), ("cpu+cpu", "sinebench", 5)]
    narrow, left_out = combinations([gpu], ["chainermn"], ["graph"], ["quality_small"], ["fp32"], ["sgd", "adam"])
    assert sorted((c[-2], c[-1]) for c in narrow) == [("adam", 5), ("sgd", 5), ("sgd", 96)]
    assert "--recipe quality" in left_out[0]
    from bench.verifying import GEMM_UNITS
    from sinelstm.graph_cuda import MAX_UNITS

    assert GEMM_UNITS > MAX_UNITS  # the check's wide width takes the cuBLAS path


@pytest.mark.gpu
# The persistent kernels (5) and the captured cuBLAS products (96), each
# with the article's recipe and the quality recipe meant for its width, and
# quality_small's clipping at 96 with SGD: its lr 1e-2 is for n_units below
# 16, and at 96 units Adam at that rate amplified rounding to 2.5e-4 in 20
# updates (SGD passed at 1e-5).
@pytest.mark.parametrize("n_units,recipe,optimizer", [
    (n, r, o) for n, recipes in ((5, ("article", "quality_small")), (96, ("article", "quality")))
    for r in recipes for o in ("sgd", "adam")] + [(96, "quality_small", "sgd")])
def test_captured_gpu_update_equals_eager(recipe, optimizer, n_units):
    res = verify(parse_device_set("0"), "single-process", verify_config(
        impl="graph", n_devices=1, recipe=RECIPES[recipe], optimizer=optimizer, n_units=n_units))
    assert res.passed, res


def _verify_cublas_path(optimizer: str):
    """verify on GPU 0 at 96 units (the captured cuBLAS path), the article's recipe."""
    return verify(parse_device_set("0"), "single-process", verify_config(
        impl="graph", n_devices=1, recipe=RECIPES["article"], optimizer=optimizer, n_units=96))


@pytest.mark.gpu
@pytest.mark.parametrize("splits", [2, 4])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_dh_split_over_k_equals_eager(monkeypatch, optimizer, splits):
    """The backward's dh product as parts over K, summed by the step
    kernel (chosen where it is faster), at 96 units."""
    from sinelstm import graph_gemm

    monkeypatch.setattr(graph_gemm.GemmGraphs, "_fastest_dh_split", lambda self, lane_count=1: splits)
    res = _verify_cublas_path(optimizer)
    assert res.passed, res


def test_lanes_share_the_sequences_out_once_each(monkeypatch):
    """Every sequence in one lane, lanes in order and as even as they
    divide; at most one lane per sequence, one in 3xtf32; a bad count is
    refused, naming the variable."""
    from sinelstm import graph_gemm

    for B, L in ((8, 2), (8, 3), (4096, 2), (5, 4), (1, 1)):
        rows = graph_gemm.lane_rows(B, L)
        assert [r for r0, r1 in rows for r in range(r0, r1)] == list(range(B))
        assert max(r1 - r0 for r0, r1 in rows) - min(r1 - r0 for r0, r1 in rows) <= 1
    monkeypatch.setenv("CUPY_TF32", "0")
    monkeypatch.setattr(graph_gemm, "LANES", "2")
    assert graph_gemm.lanes(4096) == 2 and graph_gemm.lanes(1) == 1
    monkeypatch.setenv(precision.SPLIT_ENV, "1")
    assert graph_gemm.lanes(4096) == 1
    monkeypatch.delenv(precision.SPLIT_ENV)
    monkeypatch.setattr(graph_gemm, "LANES", "auto")  # two lanes in FP32 where the batch per GPU is about 2048
    assert [graph_gemm.lanes(B) for B in (1024, 1535, 1536, 2048, 3071, 3072, 4096)] == [1, 1, 2, 2, 2, 1, 1]
    monkeypatch.setenv("CUPY_TF32", "1")
    assert graph_gemm.lanes(2048) == 1
    for bad in ("0", "two"):
        monkeypatch.setattr(graph_gemm, "LANES", bad)
        with pytest.raises(ValueError, match="SINEBENCH_LANES"):
            graph_gemm.lanes(4096)


@pytest.mark.gpu
@pytest.mark.parametrize("count,optimizer", [("2", "adam"), ("3", "sgd"), ("3", "adam")])
def test_lanes_equal_eager(monkeypatch, count, optimizer):
    """The batch in two lanes (four sequences each at verify's batch of 8)
    and in three (uneven: 2, 3, 3), each lane on its own stream, at 96
    units; the weights' gradient is one product after every lane's chain
    (in parts, each after every lane's steps: the two-GPU test's)."""
    from sinelstm import graph_gemm

    monkeypatch.setattr(graph_gemm, "LANES", count)
    monkeypatch.setattr(graph_gemm, "GRAD_CHUNK", "0")
    monkeypatch.delenv(precision.SPLIT_ENV, raising=False)
    assert graph_gemm.lanes(8) == int(count)
    res = _verify_cublas_path(optimizer)
    assert res.passed, res


def test_the_recurrent_gradient_parts_cover_each_step_once():
    """Latest steps first (backward's order), steps 1 to T - 1 once each,
    about the rows asked for and at least one step a part."""
    from sinelstm.graph_gemm import grad_parts

    for T, B, rows in ((10, 4096, 4096), (10, 2048, 4096), (10, 1000, 4096), (200, 10, 4096), (10, 8, 1), (2, 5, 9)):
        parts = grad_parts(T, B, rows)
        steps = [t for t0, t1 in parts for t in reversed(range(t0, t1))]
        assert steps == list(reversed(range(1, T))), (T, B, rows)
        assert all(t1 - t0 <= max(1, -(-rows // B)) for t0, t1 in parts)
    assert [len(grad_parts(10, B, 4096)) for B in (4096, 2048, 1000)] == [9, 5, 2]
    assert grad_parts(10, 4096, 0) == grad_parts(1, 4096, 4096) == []


def test_the_recurrent_gradient_is_in_parts_in_fp32_at_large_batches_only(monkeypatch):
    from sinelstm import graph_gemm

    monkeypatch.setattr(graph_gemm, "GRAD_CHUNK", "auto")
    monkeypatch.setenv("CUPY_TF32", "0")
    monkeypatch.setattr(graph_gemm, "LANES", "1")
    assert graph_gemm._grad_rows(4096) == graph_gemm._grad_rows(2048) == graph_gemm._GRAD_ROWS > 0
    assert graph_gemm._grad_rows(1024) == 0  # slower there
    monkeypatch.setattr(graph_gemm, "LANES", "auto")
    assert graph_gemm._grad_rows(2048) == 0  # two lanes: one product was faster
    assert graph_gemm._grad_rows(4096) == graph_gemm._GRAD_ROWS
    monkeypatch.setenv("CUPY_TF32", "1")
    assert graph_gemm._grad_rows(4096) == 0
    monkeypatch.setattr(graph_gemm, "GRAD_CHUNK", "2048")
    assert graph_gemm._grad_rows(10) == 2048
    for bad in ("many", "-5"):
        monkeypatch.setattr(graph_gemm, "GRAD_CHUNK", bad)
        with pytest.raises(ValueError, match="SINEBENCH_GRAD_CHUNK"):
            graph_gemm._grad_rows(4096)


@pytest.mark.gpu
@pytest.mark.parametrize("rows", ["1", "25", "0"])
def test_recurrent_gradient_in_parts_or_one_product_equals_eager(monkeypatch, rows):
    """In parts of one step each (beside the chain, accumulated), of four
    steps with a one-step remainder (verify's batch is 8: steps 6-9, 2-5,
    1), and as one product after the loop, at 96 units with Adam."""
    from sinelstm import graph_gemm

    monkeypatch.setattr(graph_gemm, "GRAD_CHUNK", rows)
    res = _verify_cublas_path("adam")
    assert res.passed, res


@pytest.mark.multigpu
@pytest.mark.mpi
@pytest.mark.parametrize("rows,lanes", [("4096", "1"), ("1", "1"), ("1", "2"), ("0", "2")])
def test_captured_all_reduce_equals_eager_on_two_gpus(rows, lanes):
    """The default parts (one at verify's batch) and one step a part, whose
    all-reduce then follows the side stream's last part; with two lanes, in
    parts and as one product (what two GPUs at batch 4096 run)."""
    env = {**cli_env(), "SINEBENCH_GRAD_CHUNK": rows, "SINEBENCH_LANES": lanes}
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "verify", "--devices", "0+1", "--strategy",
                           "chainermn", "--impl", "graph", "--optimizer", "sgd,adam"], capture_output=True,
                          text=True, env=env, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASS") == 4  # two optimizers, two widths


def test_the_first_gradient_is_compared_with_float64():
    """verify on one device also says how exact the first gradient is: the
    compiled CPU update (float32, Numba) within float32's rounding of the
    eager path in float64, not equal to it."""
    res = verify(parse_device_set("cpu"), "single-process", verify_config(impl="graph", n_devices=1))
    assert 0 < res.grad_error < 1e-5 and 0 < res.grad_error_eager < 1e-5, res
    assert "first gradient vs float64" in res.line()


def test_the_first_gradients_check_can_fail(monkeypatch):
    """Windows one step off (what a wrong offset in the check would do) give
    a gradient far from the reference's."""
    from sinelstm import exactness

    first = exactness.first_gradient
    monkeypatch.setattr(exactness, "first_gradient", lambda up: (lambda o, g: (o + 1, g))(*first(up)))
    err = exactness.gradient_error(verify_config(impl="graph", n_devices=1), CPU)
    assert err.impl > 1e-2 and err.eager < 1e-5, err


def test_several_devices_report_no_first_gradient():
    res = verify(parse_device_set("cpu+cpu"), "single-process", verify_config(n_devices=2))
    assert res.grad_error is None and "float64" not in res.line()


@pytest.mark.gpu
@pytest.mark.parametrize("n_units", [5, 96])  # the persistent kernels; the captured cuBLAS products
def test_the_captured_gpu_updates_first_gradient_is_near_float64(n_units):
    res = verify(parse_device_set("0"), "single-process", verify_config(impl="graph", n_devices=1, n_units=n_units))
    assert 0 < res.grad_error < 1e-5 and res.grad_error < 10 * res.grad_error_eager, res
