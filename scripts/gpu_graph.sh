#!/usr/bin/env bash
# The graph implementation on a GPU machine: verify the captured update
# against the eager one (1 GPU; 2 GPUs under ChainerMN where there are two),
# then time it beside the eager path at the sizes where fixed cost decides:
# the article's (batch 10, n_units 5, 10-step windows) and the quality
# recipe's (batch 10, n_units 32, 200-step windows).
#
#   scripts/build_chainer_wheel.sh; git rev-parse HEAD > .commit
#   scripts/gpu_graph.sh            # RES=... IMPLS=... UPDATES=...
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=${RES:-results/$(gpu_tag)-graph-$(date +%F)}
IMPLS=${IMPLS:-graph,sinebench}
UPDATES=${UPDATES:-3000}
start_log "RES=$RES IMPLS=$IMPLS scripts/gpu_graph.sh"
NGPU=$(nvidia-smi -L | wc -l)
SETS=0; [ "$NGPU" -ge 2 ] && SETS=0,0+1
echo "== verify"
$SB verify --devices "$SETS" --impl graph --strategy chainermn --optimizer sgd,adam --recipe article,quality_small
echo "verify exit: $?"
echo "== sweep $(date -u)"
COMMON=(--devices "cpu,$SETS" --strategy chainermn --impl "$IMPLS" --full-budget --updates "$UPDATES"
        --max-seconds 3 --warmup 20 --no-report --no-progress --out "$RES" --repeats "${REPEATS:-3}")
$SB sweep "${COMMON[@]}" --recipe article --batchsize 10 --units 5
$SB sweep "${COMMON[@]}" --recipe quality --batchsize 10 --units 32
$SB sweep "${COMMON[@]}" --recipe article --batchsize 4096 --units 64 --devices "$SETS"
python3 - "$RES" <<'PY'
import sys, pandas as pd
d = pd.read_csv(f"{sys.argv[1]}/runs.csv")
print(d.groupby(["devices", "strategy", "impl", "path", "recipe", "batchsize", "n_units"], dropna=False)
      ["ms_per_update_median"].agg(["median", "min", "max", "count"]).to_string())
print(d[d.status != "ok"][["run_id", "status", "message"]].to_string())
PY
[ "${REPORT:-1}" != 0 ] && $SB report "$RES"
echo "== done $(date -u)"
