"""``sinebench train``: one training run, its summary.json, its two plots and
the line it prints. Kept out of the CLI module, which only parses and checks
what the user typed."""
import json
from pathlib import Path

from sinelstm.config import TrainConfig
from sinelstm.names import STRATEGIES


def train_and_save(cfg: TrainConfig, ds, out: Path) -> str:
    """Train on device set ``ds``, write into ``out``; returns the line to print."""
    from bench import plots
    from bench.fsio import atomic_write
    from sinelstm.quality import closed_loop_fast
    from sinelstm.strategy import make_strategy
    from sinelstm.timing import summarize_ms
    from sinelstm.train import train as run_train

    result = run_train(cfg, make_strategy(STRATEGIES[0], ds, cfg.impl))
    loop = closed_loop_fast(result.model, cfg.data)
    stats = summarize_ms(result.step_ms)
    summary = {
        "devices": ds.spec, "impl": cfg.impl, "recipe": cfg.recipe.name, "seed": cfg.seed, "batchsize": cfg.batchsize,
        "n_units": cfg.n_units, "seqlen": cfg.seqlen, "precision": cfg.precision, "updates": result.updates,
        "train_s": result.train_s,
        "eval_s": result.eval_s, "ms_per_update_median": stats["median"], "one_step_mse": result.val_mse,
        "one_step_context": cfg.seqlen, "closed_loop_rmse_50": loop.rmse_50, "closed_loop_rmse_all": loop.rmse_all,
        "quality_target": cfg.quality_target, "quality_status": result.quality_status,
        "time_to_quality_s": result.time_to_quality_s, "updates_to_quality": result.updates_to_quality,
        "host_wait_s": result.host_wait_s, "host_slow": result.host_slow,
    }
    atomic_write(out / "summary.json", json.dumps(summary, indent=2))
    label = f"{cfg.impl} on {ds.spec}, recipe {cfg.recipe.name}, n_units {cfg.n_units}, batch {cfg.batchsize}"
    plots.save_single_run(result.curve, loop, label, out)
    ttq = (f"reached RMSE {cfg.quality_target:g} after {result.updates_to_quality} updates, "
           f"{result.time_to_quality_s:.1f} s of training" if result.time_to_quality_s is not None
           else f"quality {result.quality_status}")
    return (f"{label}: {result.updates} updates in {result.train_s:.1f} s ({stats['median']:.2f} ms/update "
            f"median; evaluation {result.eval_s:.1f} s apart); {ttq}; closed-loop RMSE {loop.rmse_50:.3f} "
            f"(50 steps) / {loop.rmse_all:.3f} (all); one-step test MSE {result.val_mse:.2e}; "
            + (f"waited {result.host_wait_s:.1f} s for the host's full speed (not timed; sinelstm.hostspeed); "
               if result.host_wait_s >= 0.1 else "")
            + f"summary.json and plots in {out}/")
