"""Search for a training recipe whose model generates the sine in closed loop.

One plain loop, nanoGPT style: the candidate recipes and the groups of runs
are the config below; ``python experiments/recipe_search.py GROUP [GROUP..]``
runs those groups and appends one row per recipe x n_units x batch x seed to
``experiments/recipe_search.csv`` (rows already there are skipped, so a
killed search resumes). Run it with one thread per process, one process at a
time (OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1): the
seconds are training wall time on one core, evaluations excluded.
"""
import csv
import os
import sys
import time
from pathlib import Path

from sinelstm.recipes import RECIPES

from experiments.search_loop import SearchRecipe, fit

# -- config ----------------------------------------------------------------------
TARGET = 0.1  # closed-loop RMSE over the whole ~900-step free run
EVAL_EVERY = 25  # updates between closed-loop evaluations (fast evaluator, ~5 ms)
AFTER_HIT = 250  # updates to keep training after the first hit: does it stay?
OUT = Path(__file__).with_name("recipe_search.csv")

R = SearchRecipe
CANDIDATES = {r.name: r for r in [
    *RECIPES.values(),  # article, quality (= notes), quality_small (= lr1e-2_d8000_clip1)
    R("notes", 200, 100, 1e-3, 1e-5, 4000),  # shared/seed/NOTES.md
    # decay speed at lr 1e-3 (notes: 1e-3 -> 1e-5 over 4000)
    R("d1000", 200, 100, 1e-3, 1e-5, 1000),
    R("d2000", 200, 100, 1e-3, 1e-5, 2000),
    # higher peak lr
    R("lr3e-3_d1000", 200, 100, 3e-3, 1e-5, 1000),
    R("lr3e-3_d2000", 200, 100, 3e-3, 1e-5, 2000),
    R("lr3e-3_d4000", 200, 100, 3e-3, 1e-5, 4000),
    R("lr1e-2_d4000_clip1", 200, 100, 1e-2, 1e-5, 4000, grad_clip=1.0),
    R("lr3e-3_d4000_clip1", 200, 100, 3e-3, 1e-5, 4000, grad_clip=1.0),
    R("lr3e-3_d8000", 200, 100, 3e-3, 1e-5, 8000),
    R("lr1e-2_d8000_clip1", 200, 100, 1e-2, 1e-5, 8000, grad_clip=1.0),
    # window shape
    R("s150b50_d1000", 150, 50, 1e-3, 1e-5, 1000),
    R("s300b100_d1000", 300, 100, 1e-3, 1e-5, 1000),
    R("s300b100_lr3e-3_d4000", 300, 100, 3e-3, 1e-5, 4000),
    R("s400b200_lr3e-3_d4000", 400, 200, 3e-3, 1e-5, 4000),
    R("lr1e-2_d2000_clip1", 200, 100, 1e-2, 1e-5, 2000, grad_clip=1.0),
    R("lr3e-2_d4000_clip1", 200, 100, 3e-2, 1e-5, 4000, grad_clip=1.0),
    R("lr1e-2_d8000_clip1_fr50", 200, 100, 1e-2, 1e-5, 8000, grad_clip=1.0, free_run=50),
    R("lr1e-2_d8000_clip1_fr100", 200, 100, 1e-2, 1e-5, 8000, grad_clip=1.0, free_run=100),
    R("lr3e-3_d8000_clip1", 200, 100, 3e-3, 1e-5, 8000, grad_clip=1.0),
    R("lr3e-2_d8000_clip1", 200, 100, 3e-2, 1e-5, 8000, grad_clip=1.0),
    R("s300b100_lr1e-2_d4000_clip1", 300, 100, 1e-2, 1e-5, 4000, grad_clip=1.0),
]}

# group -> list of (recipe name, n_units, batchsize, seeds, max_updates, max_seconds)
GROUPS = {
    "n32_screen": [(name, 32, 10, range(3), 3000, 30) for name in
                   ("notes", "d1000", "d2000", "lr3e-3_d1000", "lr3e-3_d2000", "s150b50_d1000")],
    "n5_screen": [(name, 5, 10, range(4), 8000, 30) for name in
                  ("notes", "lr3e-3_d4000", "lr1e-2_d4000_clip1", "s300b100_lr3e-3_d4000")],
    "n5_screen2": [(name, 5, 10, range(4), 8000, 30) for name in
                   ("lr1e-2_d8000_clip1", "lr3e-2_d4000_clip1", "s300b100_lr1e-2_d4000_clip1")],
    "n5_freerun": [(name, 5, 10, range(4), 8000, 30) for name in
                   ("lr1e-2_d8000_clip1_fr50", "lr1e-2_d8000_clip1_fr100")],
    "n32_final": [(name, 32, 10, range(10), 3000, 30) for name in ("lr1e-2_d8000_clip1", "lr3e-3_d2000")],
    "n32_notes": [("notes", 32, 10, range(10), 3000, 30)],
    "n5_final": [("lr1e-2_d8000_clip1", 5, 10, range(10), 20000, 60)],
    # lr rule for larger global batches: same lr, /sqrt(10), x sqrt(10)
    "batch100": [(name, 32, 100, range(3), 3000, 30) for name in
                 ("lr1e-2_d8000_clip1", "lr3e-3_d8000_clip1", "lr3e-2_d8000_clip1")],
    # batch 100 at the n32 winner's lr (same) and x sqrt(10), capped by updates' worth of CPU time
    "batch100b": [(name, 32, 100, range(2), 3000, 60) for name in ("notes", "lr3e-3_d4000")],
    "n256b10": [("notes", 256, 10, range(1), 3000, 60)],
    "n256b100": [("notes", 256, 100, range(1), 3000, 180)],
    # n_units 5 hits but does not stay at lr ~5e-3: does a faster decay keep it there?
    "n5_stay": [("lr1e-2_d2000_clip1", 5, 10, range(5), 20000, 30)],
    "batch1000": [("lr1e-2_d8000_clip1", 32, 1000, range(2), 3000, 40)],
    "n256": [(name, 256, b, range(1), 3000, 60) for b in (10, 100) for name in
             ("lr1e-2_d8000_clip1", "lr3e-3_d8000_clip1")],
    "article": [("article", n, 10, range(1), 20000, 30) for n in (5, 32)],
}
# -----------------------------------------------------------------------------

COLUMNS = ["recipe", "n_units", "batchsize", "seed", "lr", "status", "updates_to_target", "seconds_to_target",
           "stayed", "max_rmse_after_hit", "updates", "train_s", "final_rmse", "best_rmse", "max_updates",
           "max_seconds"]


def done_keys():
    if not OUT.exists():
        return set()
    with OUT.open() as f:
        return {(r["recipe"], r["n_units"], r["batchsize"], r["seed"], r["max_seconds"]) for r in csv.DictReader(f)}


def main(groups):
    assert os.environ.get("OMP_NUM_THREADS") == "1", "run with one thread per process"
    done = done_keys()
    new = not OUT.exists()
    with OUT.open("a", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        if new:
            w.writeheader()
        for group in groups:
            for name, n_units, batch, seeds, max_updates, max_seconds in GROUPS[group]:
                recipe = CANDIDATES[name]
                for seed in seeds:
                    if (name, str(n_units), str(batch), str(seed), str(max_seconds)) in done:
                        continue
                    t0 = time.perf_counter()
                    r = fit(recipe, n_units, seed=seed, batchsize=batch, target=TARGET, eval_every=EVAL_EVERY,
                            max_updates=max_updates, max_seconds=max_seconds, after_hit=AFTER_HIT)
                    row = dict(recipe=name, n_units=n_units, batchsize=batch, seed=seed, lr=recipe.lr,
                               status=r["status"], updates_to_target=r["updates_to_target"],
                               seconds_to_target=None if r["seconds_to_target"] is None
                               else round(r["seconds_to_target"], 2),
                               stayed=r["stayed"], max_rmse_after_hit=round(r["max_after_hit"], 4),
                               updates=r["updates"], train_s=round(r["train_s"], 2),
                               final_rmse=round(r["final_rmse"], 4), best_rmse=round(r["best_rmse"], 4),
                               max_updates=max_updates, max_seconds=max_seconds)
                    w.writerow(row)
                    f.flush()
                    print(f"{group} {name} n={n_units} b={batch} seed={seed}: {r['status']} "
                          f"at {r['updates_to_target']} upd / {row['seconds_to_target']} s, stayed={r['stayed']} "
                          f"best={row['best_rmse']} final={row['final_rmse']} ({time.perf_counter() - t0:.0f} s wall)",
                          flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
