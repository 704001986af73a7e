"""GPU tests: skipped where CuPy sees no (or one) GPU. Run them on a
two-GPU machine before claiming GPU support (see scripts/gpu_run.sh)."""
import subprocess
import sys

import numpy as np
import pytest

import sinelstm  # noqa: F401

from sinelstm.devices import parse_device_set
from sinelstm.config import Budget, TrainConfig
from sinelstm.recipes import RECIPES
from sinelstm.strategy import SingleProcess
from sinelstm.train import train
from sinelstm.verify import TOLERANCE, max_param_diff, trained_params, verify, verify_config

from tests.helpers import PROJECT_ROOT, cli_env


@pytest.mark.gpu
@pytest.mark.parametrize("impl", ["sinebench", "article"])
def test_cpu_and_gpu_train_the_same_model(impl):
    cfg = verify_config(impl=impl)
    cpu = trained_params(cfg, SingleProcess(parse_device_set("cpu")))
    gpu = trained_params(cfg, SingleProcess(parse_device_set("0")))
    assert max_param_diff(cpu, gpu) <= TOLERANCE


@pytest.mark.gpu
def test_cpu_and_gpu_loss_curves_agree():
    cfg = TrainConfig(n_units=5, recipe=RECIPES["article"], eval_every=50, budget=Budget(updates=200, warmup=2))
    cpu = train(cfg, SingleProcess(parse_device_set("cpu")))
    gpu = train(cfg, SingleProcess(parse_device_set("0")))
    for a, b in zip(cpu.curve, gpu.curve):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)
        assert b["val_mse"] == pytest.approx(a["val_mse"], rel=1e-2)
    assert np.all(gpu.step_ms > 0)


@pytest.mark.multigpu
@pytest.mark.parametrize("impl", ["sinebench", "article"])
def test_two_gpus_match_one(impl):
    res = verify(parse_device_set("0+1"), "single-process", verify_config(impl=impl))
    assert res.passed, res


@pytest.mark.multigpu
@pytest.mark.mpi
def test_chainermn_nccl_matches_one_gpu():
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "verify", "--devices", "0+1", "--strategy",
                           "chainermn"], capture_output=True, text=True, env=cli_env(), cwd=PROJECT_ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout


@pytest.mark.gpu
@pytest.mark.parametrize("n_units,batch", [(5, 10), (64, 33)])
def test_fused_cuda_kernels_match_unrolled(n_units, batch):
    from tests.test_fused import loss_and_grads
    from sinelstm.model import SineLSTM

    rng = np.random.default_rng(0)
    model = SineLSTM(n_units, seed=3)
    for _, p in model.namedparams():
        p.array[...] += rng.normal(0, 0.3, p.shape).astype(np.float32)
    model.to_device("@cupy:0")
    xs = model.xp.asarray(rng.uniform(-1, 1, (10, batch)).astype(np.float32))
    ts = model.xp.asarray(rng.uniform(-1, 1, (10, batch)).astype(np.float32))
    loss_ref, g_ref = loss_and_grads(model, xs, ts, fused=False)
    loss, g = loss_and_grads(model, xs, ts, fused=True)
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    for name in g_ref:
        np.testing.assert_allclose(g[name].get(), g_ref[name].get(), rtol=1e-4, atol=1e-6, err_msg=name)
