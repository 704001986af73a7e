#!/usr/bin/env bash
# Where the graph path computes the recurrent weights' gradient (issue 16):
# as one product after backward's loop (SINEBENCH_GRAD_CHUNK=0, the order
# before) or in parts of about ROWS rows on a second stream, beside the
# chain (4096, the default; 2048), at batch 4096 / n_units 1024, one GPU
# and all GPUs of the host (chainermn), fp32 and tf32. Variants interleaved,
# two rounds, so that a drifting machine does not favour one. First the
# captured path's GPU tests. ~6 minutes on 2x H200.
#   RES=... scripts/gpu_gradparts.sh      (default results/<gpu>x<n>-gradparts-<date>)
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=${RES:-results/$(gpu_tag)-gradparts-$(date +%F)}
VARIANTS=${VARIANTS:-"0 4096 2048"}
start_log "RES=$RES scripts/gpu_gradparts.sh"
N=$(nvidia-smi -L | wc -l)
DEVICES=0,$(seq -s+ 0 $((N - 1)))
echo "== tests $(date -u)"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_graph.py -m "gpu or multigpu" \
  -k "parts or two_gpus or dh_split" 2>&1 | tail -5
COMMON=(--impl graph --strategy chainermn --precision fp32,tf32 --units 1024 --batchsize 4096 --recipe article
        --full-budget --updates 150 --max-seconds 1.5 --warmup 5 --eval-every 1000 --repeats 1 --host-gate off
        --no-report --no-progress)
for round in 1 2; do
  for v in $VARIANTS; do
    echo "== rows $v round $round $(date -u)"
    SINEBENCH_GRAD_CHUNK=$v timeout 150 $SB sweep --devices "$DEVICES" "${COMMON[@]}" --out "$RES/rows$v-r$round"
  done
done
python3 - "$RES" <<'PY'
import glob, sys
import pandas as pd
rows = [pd.read_csv(f).assign(variant=f.split("/")[-2]) for f in sorted(glob.glob(sys.argv[1] + "/rows*/runs.csv"))]
d = pd.concat(rows)
d["rows"] = d.variant.str.extract(r"rows(\d+)")[0].astype(int)
t = d.pivot_table(index=["rows", "variant"], columns=["precision", "devices"], values="ms_per_update_median")
print(t.round(3).to_string())
m = d.groupby(["rows", "precision", "devices"]).ms_per_update_median.median().unstack("devices")
one = m.columns[0]
for c in m.columns[1:]:
    m[f"speedup {c}"] = m[one] / m[c]
print(m.round(4).to_string())
PY
