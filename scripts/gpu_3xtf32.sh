#!/usr/bin/env bash
# 3xTF32 (sinelstm.precision): near FP32's accuracy from TF32 tensor cores, on
# the graph implementation's cuBLAS path. On one GPU:
#   1. the products alone (scripts/gpu_probe_3xtf32.py): time and error
#      against FP64, for FP32, TF32 and 3xTF32;
#   2. verify: graph against the eager path in fp32 and 3xtf32, SGD and
#      Adam (3xtf32's reference is the eager path in FP32);
#   3. the GPU tests of the precision axis (tests/test_scaling_gpu.py);
#   4. a sweep of graph (and PyTorch's cuDNN graph) in the three
#      precisions at UNITS (default 256,1024) and BATCHES (4096,1024),
#      REPEATS (2) of each, with its report.
#
#   RES=results/h200x1-3xtf32-$(date +%F) scripts/gpu_3xtf32.sh
#
# ONLY=probe,verify,tests,sweep picks steps. About 9 minutes on an H200.
# On two GPUs: DEVICES=0,0+1 VERIFY_DEVICES=0+1 IMPLS=graph UNITS=1024
# BATCHES=4096,2048 (verify with the captured all-reduce; one GPU at the
# global batch and at each GPU's share, and two GPUs).
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=${RES:-results/$(gpu_tag)-3xtf32-$(date +%F)}
ONLY=${ONLY:-probe,verify,tests,sweep}
start_log "RES=$RES ONLY=$ONLY scripts/gpu_3xtf32.sh"
wants() { [[ ",$ONLY," == *",$1,"* ]]; }
if wants probe; then
  echo "== products alone $(date -u)"
  python3 scripts/gpu_probe_3xtf32.py | tee "$RES/probe_3xtf32.txt"
fi
if wants verify; then
  echo "== verify $(date -u)"
  $SB verify --devices ${VERIFY_DEVICES:-0} --strategy chainermn --impl graph --precision fp32,3xtf32 --optimizer sgd,adam --recipe article,quality |
    tee "$RES/verify.txt"
fi
if wants tests; then
  echo "== GPU tests $(date -u)"
  python3 -m pytest -q -p no:cacheprovider tests/test_scaling_gpu.py 2>&1 | tail -5 | tee "$RES/tests.txt"
fi
if wants sweep; then
  echo "== sweep $(date -u)"
  $SB sweep --devices ${DEVICES:-0} --strategy chainermn --impl ${IMPLS:-graph,torch-graph} --precision fp32,tf32,3xtf32 --units ${UNITS:-256,1024} \
    --batchsize ${BATCHES:-4096,1024} --recipe article --full-budget --updates 200 --max-seconds 2 \
    --repeats ${REPEATS:-2} --host-gate off --no-progress --out "$RES/sweep"
fi
echo "== done $(date -u)"
