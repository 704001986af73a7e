"""Runs benchmark runs one after another in this process (or as one MPI
rank of it) and writes each one's results into a folder for the sweep to
collect:

    python -m bench.worker SPECS_JSON OUT_DIR

SPECS_JSON holds a list of runs; run ``r`` writes ``OUT_DIR/<r.run_id>/``:
``side.json`` (curve, closed-loop and breakdown rows), then ``result.json``
(the runs.csv row), which marks the run done. A failure is written as
``error-rank<k>.json`` and ends the process, so that the next run starts in a
clean one; under MPI the failing rank aborts the job, so that the other ranks
do not hang in a collective.
"""
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path


import sinelstm  # noqa: F401
from sinelstm.devices import DeviceSpecError, parse_device_set
from sinelstm.evaluate import closed_loop
from sinelstm.flops import count_flops
from sinelstm.profile import profile_phases
from sinelstm.timing import summarize_ms
from sinelstm.train import TrainConfig, build_updater, train

from bench.config import RunSpec


def train_config(spec: RunSpec) -> TrainConfig:
    return TrainConfig(
        n_units=spec.n_units, batchsize=spec.batchsize, seqlen=spec.seqlen, updates=spec.updates,
        max_seconds=spec.max_seconds, warmup=spec.warmup, optimizer=spec.optimizer, seed=spec.seed,
        impl=spec.impl, eval_every=spec.eval_every, target_mse=spec.target_mse,
    )


def gpu_name(device_set) -> str:
    if not device_set.is_gpu:
        return ""
    import cupy

    name = cupy.cuda.runtime.getDeviceProperties(device_set.gpu_ids[0])["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def classify(exc: BaseException) -> str:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return "oom"
    if isinstance(exc, (DeviceSpecError, ImportError)):
        return "unavailable"
    return "error"


def base_row(spec: RunSpec) -> dict:
    return {
        "run_id": spec.run_id, "impl": spec.impl, "devices": spec.devices, "n_devices": spec.n_devices,
        "strategy": spec.strategy, "batchsize": spec.batchsize, "n_units": spec.n_units,
        "seqlen": spec.seqlen, "repeat": spec.repeat, "optimizer": spec.optimizer,
        "update_budget": spec.updates, "max_seconds": spec.max_seconds, "warmup": spec.warmup,
        "flops_per_update": count_flops(spec.n_units, spec.batchsize, spec.seqlen, spec.impl),
        "host": platform.node(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def failure_row(spec: RunSpec, status: str, message: str) -> dict:
    # One line, so that the CSV row stays readable.
    return {**base_row(spec), "status": status, "message": " ".join(message.split())[:500]}


def run(spec: RunSpec, out: Path):
    cfg = train_config(spec)
    device_set = parse_device_set(spec.devices)
    factory = agree = comm = None
    devices = device_set.devices()
    if spec.strategy == "chainermn":
        from sinelstm import mn

        comm = mn.create_communicator(device_set)
        mn.check_world(comm, device_set)
        factory, agree, devices = mn.updater_factory(comm, device_set), mn.agreement(comm), None
    result = train(cfg, devices, updater_factory=factory, agree=agree)
    breakdown = None
    if spec.profile:
        updater = build_updater(cfg, devices, updater_factory=factory)
        budget = spec.max_seconds / 2 if spec.max_seconds else None
        breakdown = profile_phases(updater, max_seconds=budget, agree=agree)
    if comm is not None and comm.rank != 0:
        return
    write_results(spec, device_set, result, breakdown, out)


def _six(value) -> float:
    return float(f"{float(value):.6g}")


def write_results(spec, device_set, result, breakdown, out: Path):
    stats = summarize_ms(result.step_ms)
    loop = closed_loop(result.model, train_config(spec).data)
    row = {
        **base_row(spec), "status": "ok", "message": "", "updates": result.updates,
        "ms_per_update_median": stats["median"], "ms_per_update_p25": stats["p25"],
        "ms_per_update_p75": stats["p75"],
        "samples_per_s": spec.batchsize / (stats["median"] / 1e3),
        "wall_s": result.wall_s, "train_loss": result.train_loss, "val_mse": result.val_mse,
        "closed_loop_rmse_50": loop.rmse_50, "closed_loop_rmse_all": loop.rmse_all,
        "time_to_target_s": result.time_to_target_s, "target_mse": spec.target_mse,
        "gpu_name": gpu_name(device_set),
    }
    side = {"curves.csv": [{"run_id": spec.run_id, **point} for point in result.curve]}
    if spec.repeat == 0:
        # float32 values: six significant digits keep all they hold worth plotting, at half the size.
        side["closed_loop.csv"] = [{"run_id": spec.run_id, "t": t, "truth": _six(y), "prediction": _six(p)}
                                   for t, (y, p) in enumerate(zip(loop.truth, loop.prediction))]
    if breakdown is not None:
        side["breakdown.csv"] = [{"run_id": spec.run_id, "phase": k, "ms": v} for k, v in breakdown.items()]
    # Side rows first, the row last: result.json is what marks the run done,
    # and it appears whole (the sweep polls for it).
    (out / "side.json").write_text(json.dumps(side))
    (out / "result.tmp").write_text(json.dumps(row))
    os.replace(out / "result.tmp", out / "result.json")


def runner_alive(mpi: bool) -> bool:
    """False once the sweep that started this worker is gone (killed): then
    the runs left are not wanted. Under MPI rank 0 decides for all ranks."""
    pid = os.environ.get("SINEBENCH_RUNNER_PID")
    alive = True
    if pid:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            alive = False
        except PermissionError:
            pass
    if mpi:
        from mpi4py import MPI

        alive = MPI.COMM_WORLD.bcast(alive, root=0)
    return alive


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    specs = [RunSpec(**d) for d in json.loads(Path(argv[0]).read_text())]
    batch = Path(argv[1])
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")))
    for spec in specs:
        if not runner_alive(spec.strategy == "chainermn"):
            return
        out = batch / spec.run_id
        out.mkdir(parents=True, exist_ok=True)
        run_or_fail(spec, out, rank)


def run_or_fail(spec: RunSpec, out: Path, rank: int):
    try:
        run(spec, out)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a row
        status = classify(exc)
        message = f"rank {rank}: {type(exc).__name__}: {exc}" if spec.strategy == "chainermn" else \
            f"{type(exc).__name__}: {exc}"
        (out / f"error-rank{rank}.json").write_text(json.dumps(failure_row(spec, status, message)))
        traceback.print_exc()
        if spec.strategy == "chainermn":
            try:
                from mpi4py import MPI

                MPI.COMM_WORLD.Abort(1)
            except ImportError:
                pass
        sys.exit(1)


if __name__ == "__main__":
    main()
