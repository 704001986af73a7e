#!/usr/bin/env bash
# The scaling sweep of issue 16 on a 4-GPU machine, in one command, in about
# 6-8 minutes on 4x H100: GPU count (1, 2, 4), both multi-GPU strategies,
# fp32 and tf32, NCCL's transports (default, shm, socket) for the chainermn
# sets, strong scaling (global batch 16 and 4096) and weak scaling (1024 per
# GPU), n_units 1024, the article's 10-step windows, every run its whole
# budget (--full-budget: no stop at a quality target, so that ms per update
# is comparable); the CPU at the small size only (at 4096/1024 it takes
# ~5 s an update); NCCL's bus bandwidth per transport into env.json; the
# report.
#
#   scripts/build_chainer_wheel.sh; git rev-parse HEAD > .commit   # where there is network
#   DRY_RUN=1 scripts/gpu_scale.sh     # the grid and its estimated time, nothing run
#   scripts/gpu_scale.sh               # on the GPU machine
#
# Results go to RES (default results/<gpu>x<count>-scale-<date>); rerunning
# resumes. SKIP_CHECKS=1 skips verify and the GPU tests, REPORT=0 the report.
# The grid is set by SCALE_DEVICES (default 0,0+1,0+1+2+3), CPU_DEVICES
# (default cpu; empty: no CPU), BATCHES, UNITS, PER_DEVICE, CPU_BATCHES,
# CPU_UNITS, PRECISIONS, TRANSPORTS, UPDATES and MAX_SECONDS. CPU_ONLY=1 runs
# the same script without a GPU (cpu and cpu+cpu at small sizes), the proof
# that it runs end to end.
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
if [ -n "${CPU_ONLY:-}" ]; then
  : "${SCALE_DEVICES:=cpu,cpu+cpu}" "${CPU_DEVICES:=}" "${BATCHES:=16,64}" "${UNITS:=32}" "${PER_DEVICE:=16}"
  : "${RES:=results/cpu-scale-$(date +%F)}" "${SKIP_CHECKS:=1}" "${UPDATES:=40}" "${MAX_SECONDS:=0.5}"
fi
RES=${RES:-results/$(gpu_tag)-scale-$(date +%F)}
SCALE_DEVICES=${SCALE_DEVICES:-0,0+1,0+1+2+3}
CPU_DEVICES=${CPU_DEVICES-cpu}
BATCHES=${BATCHES:-16,4096}
UNITS=${UNITS:-1024}
PER_DEVICE=${PER_DEVICE:-1024}
CPU_BATCHES=${CPU_BATCHES:-16}
CPU_UNITS=${CPU_UNITS:-32,1024}
PRECISIONS=${PRECISIONS:-fp32,tf32}
TRANSPORTS=${TRANSPORTS:-default,shm,socket}
# At ~22 ms an update (1 GPU, fp32, 4096/1024) 200 updates take 4.4 s: the
# 1.5 s cap ends the slow runs after ~70 updates, the fast ones run 200.
UPDATES=${UPDATES:-200}
MAX_SECONDS=${MAX_SECONDS:-1.5}
BUDGET=(--recipe article --full-budget --updates "$UPDATES" --max-seconds "$MAX_SECONDS" --warmup 5
        --eval-every 1000 --repeats 1 --no-report --no-progress --out "$RES")
SCALE=(--devices "$SCALE_DEVICES" --strategy single-process,chainermn --precision "$PRECISIONS"
       --transport "$TRANSPORTS" --batchsize "$BATCHES" --batch-per-device "$PER_DEVICE" --units "$UNITS")
CPU=(--devices "$CPU_DEVICES" --batchsize "$CPU_BATCHES" --units "$CPU_UNITS")

if [ -n "${DRY_RUN:-}" ]; then
  echo "== scaling grid"; $SB sweep "${SCALE[@]}" "${BUDGET[@]}" --dry-run
  [ -n "$CPU_DEVICES" ] && { echo "== CPU"; $SB sweep "${CPU[@]}" "${BUDGET[@]}" --dry-run; }
  exit 0
fi
start_log "RES=$RES SCALE_DEVICES=$SCALE_DEVICES CPU_DEVICES=$CPU_DEVICES PRECISIONS=$PRECISIONS TRANSPORTS=$TRANSPORTS scripts/gpu_scale.sh"
if [ -z "${SKIP_CHECKS:-}" ]; then
  echo "== verify $(date -u)"
  $SB verify --devices "${SCALE_DEVICES##*,}" --strategy single-process,chainermn --precision "$PRECISIONS"
  echo "verify exit: $?"
  echo "== GPU tests of the scaling axes $(date -u)"
  python3 -m pytest -q -p no:cacheprovider tests/test_scaling_gpu.py 2>&1 | tail -4
fi
echo "== scaling sweep $(date -u)"
$SB sweep "${SCALE[@]}" "${BUDGET[@]}"
if [ -n "$CPU_DEVICES" ]; then
  echo "== CPU $(date -u)"
  $SB sweep "${CPU[@]}" "${BUDGET[@]}"
fi
if [ "${REPORT:-1}" != 0 ]; then
  echo "== report $(date -u)"
  $SB report "$RES"
fi
echo "== done $(date -u)"
