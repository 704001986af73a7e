"""Summarize experiments/recipe_search.csv: per recipe x n_units x batch x cap,
seeds reached, median and range of updates and seconds to target."""
from pathlib import Path

import pandas as pd

df = pd.read_csv(Path(__file__).with_name("recipe_search.csv"))
rows = []
for key, g in df.groupby(["recipe", "n_units", "batchsize", "max_seconds"], sort=False):
    hit = g[g.status == "reached"]
    rows.append(dict(zip(["recipe", "n_units", "batch", "cap_s"], key), reached=f"{len(hit)}/{len(g)}",
                     diverged=int((g.status == "diverged").sum()), stayed=int(g.stayed.sum()),
                     upd_median=hit.updates_to_target.median(),
                     upd_range=f"{hit.updates_to_target.min():.0f}-{hit.updates_to_target.max():.0f}" if len(hit) else "",
                     s_median=round(hit.seconds_to_target.median(), 1),
                     s_range=f"{hit.seconds_to_target.min():.1f}-{hit.seconds_to_target.max():.1f}" if len(hit) else "",
                     best_rmse_median=round(g.best_rmse.median(), 3)))
out = pd.DataFrame(rows).astype(str)
print("| " + " | ".join(out.columns) + " |")
print("|" + "---|" * len(out.columns))
for r in out.itertuples(index=False):
    print("| " + " | ".join(map(str, r)) + " |")
