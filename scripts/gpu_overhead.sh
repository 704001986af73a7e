#!/usr/bin/env bash
# The overhead floor (the compiled update and the PyTorch reference) on a GPU
# machine, in one command: the GPU tests of both, verify of the captured
# update against the eager one (1 GPU, and 2 GPUs under ChainerMN), then one
# sweep with every implementation side by side — sinebench's eager and
# compiled updates, PyTorch eager, captured and DDP — at the sizes where
# fixed cost decides and at sizes where arithmetic does, and its report.
#
#   scripts/build_chainer_wheel.sh; git rev-parse HEAD > .commit
#   scripts/gpu_overhead.sh         # RES=... REPEATS=... SKIP_CHECKS=1
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=${RES:-results/$(gpu_tag)-overhead-$(date +%F)}
REPEATS=${REPEATS:-2}
DEVICES=${DEVICES:-cpu,0,0+1}
IMPLS=${IMPLS:-sinebench,graph,torch,torch-graph,torch-ddp}
start_log "RES=$RES REPEATS=$REPEATS DEVICES=$DEVICES scripts/gpu_overhead.sh"
python3 -c "import torch, cupy, chainer; print('torch', torch.__version__, 'cudnn', torch.backends.cudnn.version(),
'| cupy', cupy.__version__, '| chainer', chainer.__version__)" 2>&1 | tail -1
GPUSETS=$(echo "$DEVICES" | tr , '\n' | grep -v '^cpu' | paste -sd, -)
if [ -z "${SKIP_CHECKS:-}" ]; then
  echo "== GPU tests $(date -u)"
  timeout 150 python3 -m pytest -q -p no:cacheprovider -m "gpu or multigpu" tests/test_graph.py \
    tests/test_torch_ref.py 2>&1 | tail -4
  echo "== verify $(date -u)"
  timeout 150 $SB verify --devices "$GPUSETS" --impl graph --strategy chainermn --optimizer sgd,adam \
    --recipe article,quality_small
  echo "verify exit: $?"
fi
COMMON=(--devices "$DEVICES" --strategy chainermn --impl "$IMPLS" --full-budget --updates 3000 --max-seconds 1
        --warmup 5 --eval-every 1000 --repeats "$REPEATS" --no-report --no-progress --out "$RES")
echo "== sweep: the article's windows $(date -u)"
$SB sweep "${COMMON[@]}" --recipe article --batchsize 10,1000 --units 5,256
echo "== sweep: the quality recipe's 200-step windows, batch 10 / n_units 32 $(date -u)"
$SB sweep "${COMMON[@]}" --recipe quality --batchsize 10 --units 32
echo "== sweep: batch 4096 / n_units 1024 on one GPU $(date -u)"
$SB sweep "${COMMON[@]}" --devices 0 --impl sinebench,graph,torch --recipe article --batchsize 4096 --units 1024 \
  --max-seconds 2
echo "== report $(date -u)"
$SB report "$RES"
python3 - "$RES" <<'PY'
import sys
import pandas as pd
d = pd.read_csv(f"{sys.argv[1]}/runs.csv")
print(d.groupby(["seqlen", "batchsize", "n_units", "devices", "impl", "path"], dropna=False)
      ["ms_per_update_median"].agg(["median", "min", "max", "count"]).to_string())
bad = d[d.status != "ok"]
print(bad[["run_id", "status", "message"]].to_string() if len(bad) else "every run ok")
PY
echo "== done $(date -u)"
