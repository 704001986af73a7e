#!/usr/bin/env bash
# 3xTF32's accuracy and speed against the terms a tensor-core call sums
# (sinelstm.graph_gemm.x3_ranges, SINEBENCH_X3_K), on one GPU: for each K
# in X3KS, verify (graph against the eager FP32 path, 20 Adam updates,
# the article's and the quality recipe, at UNITS) and a sweep of graph in
# 3xtf32 at batch 4096 / UNITS (REPEATS each); fp32 graph once, for both,
# as the reference. Results: RES/verify.txt, RES/k<K>/ and RES/fp32/ (sweep
# folders), RES/log.txt. About 5 minutes on an H200.
#
#   RES=results/h200x1-x3k X3KS="100000 1024 512 256" scripts/gpu_x3k.sh
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=${RES:-results/$(gpu_tag)-x3k-$(date +%F)}
UNITS=${UNITS:-1024}
start_log "RES=$RES X3KS=${X3KS:-} scripts/gpu_x3k.sh"
SWEEP=(--devices 0 --impl graph --units "$UNITS" --batchsize 4096 --recipe article --full-budget --updates 200
       --max-seconds 2 --repeats "${REPEATS:-2}" --host-gate off --no-progress --no-report)
VERIFY=(--devices 0 --impl graph --optimizer adam --recipe article,quality --units "$UNITS")
echo "== fp32 $(date -u)"
$SB verify "${VERIFY[@]}" --precision fp32 | tee -a "$RES/verify.txt"
$SB sweep "${SWEEP[@]}" --precision fp32 --out "$RES/fp32" | tail -2
for k in ${X3KS:-100000 1024 512 256}; do
  echo "== SINEBENCH_X3_K=$k $(date -u)" | tee -a "$RES/verify.txt"
  SINEBENCH_X3_K=$k $SB verify "${VERIFY[@]}" --precision 3xtf32 | tee -a "$RES/verify.txt"
  SINEBENCH_X3_K=$k $SB sweep "${SWEEP[@]}" --precision 3xtf32 --out "$RES/k$k" | tail -2
done
echo "== ms per update $(date -u)"
for d in "$RES"/fp32 "$RES"/k*; do
  python3 -c "import sys; from bench.store import ResultStore; r = ResultStore(sys.argv[1]).load()['runs']; \
print(sys.argv[1], ' '.join(f'{m:.3f}' for m in r[r.status == 'ok'].ms_per_update_median))" "$d"
done | tee "$RES/ms.txt"
echo "== done $(date -u)"
