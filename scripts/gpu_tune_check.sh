#!/usr/bin/env bash
# The tuned cuBLAS path on a 2-GPU machine (issue 16's 2-GPU goal): what
# tuning chose and gave on one GPU (SINEBENCH_GEMM_TUNE 0 against 1), that
# verify and the GPU tests still pass, then 1 against 2 GPUs at batch 4096 /
# n_units 1024 in fp32 and tf32, tuned and not, each a small sweep.
#
#   RES=... scripts/gpu_tune_check.sh      (on the GPU machine)
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=${RES:-results/$(gpu_tag)-tuned-$(date +%F)}
start_log "RES=$RES scripts/gpu_tune_check.sh"
echo "== one GPU, untuned and tuned $(date -u)"
for tf in 0 1; do for tune in 0 1; do
  CUPY_TF32=$tf SINEBENCH_GEMM_TUNE=$tune timeout 120 python3 scripts/gpu_tuning.py
done; done 2>&1 | grep -v Warning | tee "$RES/tuning.txt"
if [ "${CHECKS:-1}" = 1 ]; then
  echo "== verify $(date -u)"
  timeout 200 $SB verify --devices 0+1 --strategy chainermn --impl graph --optimizer sgd,adam --precision fp32,tf32
  echo "== GPU tests $(date -u)"
  timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_graph.py 2>&1 | grep -vi warning | tail -40
fi
SWEEP=(--devices 0,0+1 --strategy chainermn --impl graph --batchsize 4096 --units 1024 --precision fp32,tf32
       --recipe article --full-budget --updates 400 --max-seconds 2 --warmup 5 --repeats 2 --no-report --no-progress)
for tune in 1 0; do
  echo "== sweep SINEBENCH_GEMM_TUNE=$tune $(date -u)"
  SINEBENCH_GEMM_TUNE=$tune timeout 240 $SB sweep "${SWEEP[@]}" --out "$RES/tune$tune"
done
echo "== done $(date -u)"
