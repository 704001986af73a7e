#!/usr/bin/env bash
# The PyTorch reference beside sinebench on one GPU machine, in about three
# minutes: its GPU tests, then two small fixed-length sweeps with
# --impl sinebench,torch,torch-graph,torch-ddp on GPU 0 and GPUs 0+1
# (sinebench's 0+1 with ChainerMN, the PyTorch side with DDP), and the report.
#
#   batch 10 / n_units 5,  the article's recipe (10-step windows)
#   batch 10 / n_units 32, the quality recipe (200-step windows, burn-in 100)
#
# Needs PyTorch installed (the GPU machines have it; elsewhere
# uv sync --extra torch) and a CuPy for sinebench. Results go to RES
# (default results/<gpu>x<count>-torch-<date>), copied into $OUT when set.
# DEVICES (default 0,0+1) adds e.g. cpu for the CPU side of the crossover.
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=${RES:-results/$(gpu_tag)-torch-$(date +%F)}
DEVICES=${DEVICES:-0,0+1}
start_log "RES=$RES DEVICES=$DEVICES scripts/gpu_torch.sh"
python3 -c "import torch, cupy, chainer; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn',
torch.backends.cudnn.version(), '| cupy', cupy.__version__, '| chainer', chainer.__version__)"

echo "== GPU tests of the PyTorch reference $(date -u)"
timeout 150 python3 -m pytest -q -p no:cacheprovider -m "gpu or multigpu" tests/test_torch_ref.py 2>&1 | tail -6

# Fixed length: each run does its whole budget (or 1 s of updates), so that
# the graph's sub-millisecond updates are timed over thousands of updates.
COMMON=(--devices "$DEVICES" --impl sinebench,torch,torch-graph,torch-ddp --strategy chainermn --batchsize 10
        --full-budget --updates 4000 --max-seconds 1 --warmup 5 --eval-every 1000 --repeats 1
        --no-report --no-progress --out "$RES")
echo "== sweep: batch 10 / n_units 5, article recipe $(date -u)"
$SB sweep "${COMMON[@]}" --units 5 --recipe article
echo "== sweep: batch 10 / n_units 32, quality recipe (200-step windows) $(date -u)"
$SB sweep "${COMMON[@]}" --units 32 --recipe quality
echo "== report $(date -u)"
$SB report "$RES"
python3 - "$RES" <<'PY'
import sys
import pandas as pd
runs = pd.read_csv(f"{sys.argv[1]}/runs.csv")
cols = ["impl", "devices", "strategy", "seqlen", "n_units", "status", "updates", "ms_per_update_median", "gpu_name",
        "message"]
print(runs[cols].sort_values(["seqlen", "ms_per_update_median"]).to_string(index=False))
PY
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT/results" && cp -r "$RES" "$OUT/results/"
fi
echo "== done $(date -u)"
