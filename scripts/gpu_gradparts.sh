#!/usr/bin/env bash
# Where the graph path computes the recurrent weights' gradient, and in how
# many lanes (issue 16), at batch 4096 / n_units 1024, one GPU and all GPUs
# of the host (chainermn), fp32 and tf32 (BATCHES, DEVICES change them). Each variant is a set of environment
# settings (sinelstm/graph_gemm.py):
#   SINEBENCH_GRAD_CHUNK    rows a part, beside the chain; 0: one product after the loop
#   SINEBENCH_DH_SPLIT      auto, 1, 2 or 4
#   SINEBENCH_LANES         the batch in this many chains, each on its own stream
# and TREE=PATH runs that variant from another source tree (sinelstm/ and
# bench/ of an earlier commit, its .commit beside them), for an A/B of code;
# each sweep's env.json says under "source" which tree its code came from.
# PRECISION=fp32 leaves tf32 out.
# Variants interleaved round by round, so that a drifting machine favours
# none. First the captured path's GPU tests (TESTS=0 skips them).
#   RES=... scripts/gpu_gradparts.sh      (default results/<gpu>x<n>-gradparts-<date>)
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=$(realpath -m "${RES:-results/$(gpu_tag)-gradparts-$(date +%F)}")  # absolute: a variant may run from another tree
VARIANTS=${VARIANTS:-"one:GRAD_CHUNK=0 parts:GRAD_CHUNK=4096"}
ROUNDS=${ROUNDS:-2}
start_log "RES=$RES scripts/gpu_gradparts.sh"
N=$(nvidia-smi -L | wc -l)
DEVICES=${DEVICES:-0,$(seq -s+ 0 $((N - 1)))}
if [ "${TESTS:-1}" = 1 ]; then
  echo "== tests $(date -u)"
  timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_graph.py -m "gpu or multigpu" \
    -k "${TESTS_K:-parts or two_gpus or dh_split or lanes}" 2>&1 | tail -3
fi
COMMON=(--impl graph --strategy chainermn --precision "${PRECISION:-fp32,tf32}" --units 1024
        --batchsize "${BATCHES:-4096}"
        --recipe article --full-budget --updates 150 --max-seconds 1.5 --warmup 5 --eval-every 1000 --repeats 1
        --host-gate off --no-report --no-progress)
for round in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    name=${v%%:*}
    settings=()
    IFS=, read -ra pairs <<< "${v#*:}"
    tree=.
    for p in "${pairs[@]}"; do
      if [[ $p == TREE=* ]]; then  # run from that tree (python -m puts the working folder first on the path)
        tree=${p#TREE=}
        settings+=("SINEBENCH_GIT_COMMIT=$(cat "$tree/.commit")")
      else
        settings+=("SINEBENCH_$p")
      fi
    done
    echo "== $name (${settings[*]}) from $tree, round $round $(date -u)"
    (cd "$tree" && env ${settings[@]+"${settings[@]}"} timeout 150 $SB sweep --devices "$DEVICES" "${COMMON[@]}" \
      --out "$RES/$name-r$round")
  done
done
python3 - "$RES" <<'PY'
import glob, sys
import pandas as pd
rows = [pd.read_csv(f).assign(run=f.split("/")[-2]) for f in sorted(glob.glob(sys.argv[1] + "/*-r*/runs.csv"))]
d = pd.concat(rows)
d["variant"] = d.run.str.rsplit("-r", n=1).str[0]
print(d.pivot_table(index=["variant", "run"], columns=["precision", "batchsize", "devices"],
                    values="ms_per_update_median").round(3).to_string())
m = d.groupby(["variant", "precision", "batchsize", "devices"]).ms_per_update_median.median().unstack("devices")
one = m.columns[0]
for c in m.columns[1:]:
    m[f"speedup {c}"] = m[one] / m[c]
print(m.round(4).to_string())
PY
