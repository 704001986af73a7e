#!/usr/bin/env bash
# How the graph path's all-reduce should overlap backward (issue 16): the
# same 2- and 4-GPU runs at batch 4096 / n_units 1024 with the recurrent
# weights' all-reduce after backward ("none") or beside its memory-bound
# last products ("tail", the default), SINEBENCH_COMM_OVERLAP; one GPU at
# the per-GPU batches beside them. ~3 minutes on 4x H200.
#   RES=... scripts/gpu_overlap.sh        (default results/<gpu>x<n>-overlap-<date>)
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=${RES:-results/$(gpu_tag)-overlap-$(date +%F)}
start_log "RES=$RES scripts/gpu_overlap.sh"
COMMON=(--impl graph --precision fp32,tf32 --units 1024 --recipe article --full-budget --updates 150
        --max-seconds 1.5 --warmup 5 --eval-every 1000 --repeats 1 --no-report --no-progress)
echo "== one GPU $(date -u)"
timeout 150 $SB sweep --devices 0 --batchsize 1024,2048,4096 "${COMMON[@]}" --out "$RES/one"
for v in none tail; do
  echo "== overlap $v $(date -u)"
  SINEBENCH_COMM_OVERLAP=$v timeout 150 $SB sweep --devices 0+1,0+1+2+3 --strategy chainermn --batchsize 4096 \
    "${COMMON[@]}" --out "$RES/$v"
done
python3 - "$RES" <<'PY'
import glob, sys
import pandas as pd
rows = [pd.read_csv(f).assign(variant=f.split("/")[-2]) for f in sorted(glob.glob(sys.argv[1] + "/*/runs.csv"))]
d = pd.concat(rows)
print(d.pivot_table(index=["variant", "devices", "batchsize"], columns="precision",
                    values="ms_per_update_median").round(3).to_string())
PY
