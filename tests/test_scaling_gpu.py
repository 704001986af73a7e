"""The scaling axes on GPUs: skipped here without them. Run on a machine
with two GPUs or more (scripts/gpu_scale.sh runs them first):

    pytest -q tests/test_scaling_gpu.py
"""
import json
import re
import subprocess
import sys

import pytest

from tests.helpers import PROJECT_ROOT, sinebench

# A float32 product in a fresh process, against float64: the relative error
# says whether the tensor cores' TF32 (10-bit inputs) or plain fp32 computed it.
PRODUCT_ERROR = """
import cupy, numpy
rng = numpy.random.default_rng(0)
a, b = (rng.standard_normal((1024, 1024)) for _ in range(2))
exact = a @ b
got = cupy.asnumpy(cupy.asarray(a, cupy.float32) @ cupy.asarray(b, cupy.float32)).astype(numpy.float64)
print(float(numpy.abs(got - exact).max() / numpy.abs(exact).max()))
"""


def product_error(precision: str) -> float:
    from bench.launch import worker_env

    proc = subprocess.run([sys.executable, "-c", PRODUCT_ERROR], capture_output=True, text=True,
                          env=worker_env(precision), cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout.strip())


@pytest.mark.gpu
def test_the_worker_environment_sets_the_precision():
    import cupy

    if int(cupy.cuda.Device(0).compute_capability) < 80:
        pytest.skip("TF32 needs compute capability 8.0 or more")
    fp32, tf32 = product_error("fp32"), product_error("tf32")
    assert fp32 < 1e-5  # fp32: about 2^-24 per operation
    assert tf32 > 1e-4  # 10-bit inputs: about 2^-11 per operand
    assert product_error("3xtf32") < 1e-5  # CuPy's own products stay fp32: only graph's are split


@pytest.mark.gpu
def test_graph_in_3xtf32_trains_what_the_eager_path_trains_in_fp32():
    # at FP32's tolerance (1e-5), which TF32's 10-bit inputs miss by far
    proc = sinebench("verify", "--devices", "0", "--impl", "graph", "--precision", "3xtf32", "--optimizer",
                     "sgd,adam")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "3xtf32" in line]
    assert len(lines) == 2 and all("n96" in line and "PASS" in line for line in lines), proc.stdout
    assert "3xtf32 not checked on 0 with graph" not in proc.stderr  # n5's line is left out quietly


@pytest.mark.gpu
def test_3xtf32_in_short_calls(monkeypatch):
    """At verify's size (96 units, batch 8) each 3xTF32 product is one call
    of at most X3_K = 512 big*big terms; with 32, every product is several
    (an H200: PASS at 1.19e-7, first gradient 2e-7 off float64)."""
    monkeypatch.setenv("SINEBENCH_X3_K", "32")
    proc = sinebench("verify", "--devices", "0", "--impl", "graph", "--precision", "3xtf32", "--units", "96")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    errors = [float(e) for e in re.findall(r"first gradient vs float64 (\S+)", proc.stdout)]
    assert len(errors) == 1 and errors[0] < 1e-5, proc.stdout


@pytest.mark.multigpu
@pytest.mark.mpi
def test_graph_in_3xtf32_on_two_gpus():
    pytest.importorskip("mpi4py")
    proc = sinebench("verify", "--devices", "0+1", "--strategy", "chainermn", "--impl", "graph", "--precision",
                     "3xtf32", "--optimizer", "sgd,adam")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.gpu
def test_train_in_tf32(tmp_path):
    proc = sinebench("train", "--devices", "0", "--precision", "tf32", "--recipe", "article", "--updates", "50",
                     "--full-budget", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["updates"] == 50


@pytest.mark.multigpu
@pytest.mark.mpi
def test_verify_both_precisions_both_strategies():
    pytest.importorskip("mpi4py")
    proc = sinebench("verify", "--devices", "0+1", "--strategy", "single-process,chainermn",
                     "--precision", "fp32,tf32")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASS") == 4


@pytest.mark.multigpu
@pytest.mark.mpi
@pytest.mark.parametrize("transport,path", [("default", ""), ("p2p", "P2P"), ("shm", "SHM"),
                                            ("socket", "NET/Socket")])
def test_bus_bandwidth_per_transport(tmp_path, transport, path):
    pytest.importorskip("mpi4py")
    from bench import busbw

    res = busbw.measure("0+1", transport, tmp_path)
    assert res["status"] == "ok", res
    assert res["busbw_GBps"] > 0 and res["latency_us"] > 0
    assert all(p.startswith(path) for p in res["nccl_paths"]) and res["nccl_paths"], res["nccl_paths"]


@pytest.mark.multigpu
@pytest.mark.mpi
def test_a_socket_row_and_its_bandwidth_in_env_json(tmp_path):
    pytest.importorskip("mpi4py")
    proc = sinebench("sweep", "--devices", "0,0+1", "--strategy", "chainermn", "--transport", "default,socket",
                     "--precision", "fp32,tf32", "--batchsize", "64", "--units", "32", "--recipe", "article",
                     "--full-budget", "--updates", "30", "--max-seconds", "2", "--warmup", "2", "--repeats", "1",
                     "--no-progress", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    import pandas as pd

    runs = pd.read_csv(tmp_path / "runs.csv")
    assert (runs["status"] == "ok").all(), runs[["run_id", "message"]]
    assert sorted(zip(runs["devices"], runs["precision"], runs["transport"])) == [
        ("0", "fp32", "default"), ("0", "tf32", "default"), ("0+1", "fp32", "default"), ("0+1", "fp32", "socket"),
        ("0+1", "tf32", "default"), ("0+1", "tf32", "socket")]
    (record,) = json.loads((tmp_path / "env.json").read_text())["invocations"].values()
    assert {r["transport"]: r["status"] for r in record["busbw"]["results"]} == {"default": "ok", "socket": "ok"}
