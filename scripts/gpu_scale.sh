#!/usr/bin/env bash
# The scaling sweep of issue 16 on a 4-GPU machine, in one command, in about
# 7 minutes on 4x H200, most important first (each step resumes if rerun):
#   1. strong scaling at batch 4096 / n_units 1024: GPU count 1, 2, 4; the
#      eager implementation under both multi-GPU strategies and the captured
#      one (graph, one process per GPU); fp32 and tf32;
#   2. NCCL's transports (shm, socket; default is step 1's) for the
#      chainermn sets of both implementations, at batch 16 and 4096, fp32;
#   3. one GPU at each set's share of step 1's batch (2048 and 1024 of 4096),
#      fp32 and tf32: what the share's smaller products cost, apart from
#      communication (the report's split of each speedup's shortfall);
#   4. weak scaling, 1024 windows per GPU, fp32;
#   5. the latency-bound end: batch 16 / n_units 1024 on every set, fp32;
#   6. the CPU at batch 16 (n_units 32 and 1024).
# The article's 10-step windows; every run its whole budget (--full-budget:
# no stop at a quality target, so that ms per update is comparable); NCCL's
# bus bandwidth per transport into env.json. The report is rendered where
# the results are brought back (REPORT=1 renders it here too).
#
#   scripts/build_chainer_wheel.sh; git rev-parse HEAD > .commit   # where there is network
#   DRY_RUN=1 scripts/gpu_scale.sh     # the grids, nothing run
#   scripts/gpu_scale.sh               # on the GPU machine
#
# The host-speed gate is off (HOST_GATE=0.2 turns it on): these sizes are
# bound by the GPUs, one repeat each, and on a 4x H200 host with the gate at
# its default 12 of the multi-GPU runs (device-bound ones among them) were
# stopped as slow-host, their ranks' probes >20 % over the fastest for 15 s,
# which used up the call (2026-11-28).
# Results go to RES (default results/<gpu>x<count>-scale-<date>). CHECKS=1
# runs verify and the GPU tests of the scaling axes first. SETS (default
# 0,0+1,0+1+2+3), UNITS, BATCH, SMALL, PER_DEVICE, UPDATES and MAX_SECONDS
# change the grid; ONLY (e.g. "strong shares") runs those steps alone.
# CPU_ONLY=1 runs the same steps without a GPU (cpu and cpu+cpu at small
# sizes), the proof that the script runs end to end.
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
if [ -n "${CPU_ONLY:-}" ]; then
  : "${SETS:=cpu,cpu+cpu}" "${UNITS:=32}" "${BATCH:=64}" "${SMALL:=16}" "${PER_DEVICE:=16}" "${CPU_SETS:=}"
  : "${RES:=results/cpu-scale-$(date +%F)}" "${UPDATES:=40}" "${MAX_SECONDS:=0.5}" "${PRECISIONS:=fp32}"
  : "${TRANSPORTS:=default}"
fi
RES=${RES:-results/$(gpu_tag)-scale-$(date +%F)}
SETS=${SETS:-0,0+1,0+1+2+3}
MULTI=${SETS#*,}  # the multi-device sets (none where SETS is one set)
[ "$MULTI" = "$SETS" ] && MULTI=""
CPU_SETS=${CPU_SETS-cpu}
UNITS=${UNITS:-1024}
BATCH=${BATCH:-4096}
SMALL=${SMALL:-16}
PER_DEVICE=${PER_DEVICE:-1024}
PRECISIONS=${PRECISIONS:-fp32,tf32}
TRANSPORTS=${TRANSPORTS:-shm,socket}
# At ~22 ms an update (1 GPU, fp32, eager, 4096/1024) the 1.5 s cap ends a
# run after ~70 updates; the fast ones run 200.
UPDATES=${UPDATES:-200}
MAX_SECONDS=${MAX_SECONDS:-1.5}
RUN=(--recipe article --full-budget --updates "$UPDATES" --max-seconds "$MAX_SECONDS" --warmup 5
     --eval-every 1000 --repeats 1 --host-gate "${HOST_GATE:-off}" --no-report --no-progress --out "$RES" --units "$UNITS")
BOTH=(--impl sinebench,graph --strategy single-process,chainermn)
# Each multi-device set's first device alone at that set's share of BATCH
# (a share only where BATCH divides evenly), one step per first device.
declare -A SHARES=()
for set in ${MULTI//,/ }; do
  n=$(($(tr -cd + <<< "$set" | wc -c) + 1)) first=${set%%+*}
  (( BATCH % n )) && continue
  [[ ",${SHARES[$first]:-}," == *",$((BATCH / n)),"* ]] || SHARES[$first]+="${SHARES[$first]:+,}$((BATCH / n))"
done
STEPS=("strong|--devices $SETS ${BOTH[*]} --precision $PRECISIONS --batchsize $BATCH")
if [ -n "$MULTI" ]; then
  STEPS+=("transports|--devices $MULTI --strategy chainermn --impl sinebench,graph --transport $TRANSPORTS"\
" --batchsize $SMALL,$BATCH")
fi
for first in "${!SHARES[@]}"; do
  STEPS+=("shares|--devices $first --impl sinebench,graph --precision $PRECISIONS --batchsize ${SHARES[$first]}")
done
STEPS+=("weak|--devices $SETS ${BOTH[*]} --batch-per-device $PER_DEVICE"
        "small|--devices $SETS ${BOTH[*]} --batchsize $SMALL")
[ -n "$CPU_SETS" ] && STEPS+=("cpu|--devices $CPU_SETS --batchsize $SMALL --units 32,$UNITS")

if [ -n "${ONLY:-}" ]; then  # names, by spaces or commas; an unknown one is an error, before anything runs
  names=" $(for step in "${STEPS[@]}"; do printf '%s ' "${step%%|*}"; done)"
  kept=()
  for want in ${ONLY//,/ }; do
    if [[ "$names" != *" $want "* ]]; then
      echo "gpu_scale.sh: ONLY names '$want'; the steps here are:$names" >&2
      exit 2
    fi
  done
  for step in "${STEPS[@]}"; do [[ " ${ONLY//,/ } " == *" ${step%%|*} "* ]] && kept+=("$step"); done
  STEPS=("${kept[@]}")
fi
for step in "${STEPS[@]}"; do
  name=${step%%|*}
  read -ra args <<< "${step#*|}"
  if [ -n "${DRY_RUN:-}" ]; then
    echo "== $name"; $SB sweep "${RUN[@]}" "${args[@]}" --dry-run
  fi
done
[ -n "${DRY_RUN:-}" ] && exit 0
start_log "RES=$RES SETS=$SETS PRECISIONS=$PRECISIONS TRANSPORTS=$TRANSPORTS scripts/gpu_scale.sh"
if [ -n "${CHECKS:-}" ]; then
  echo "== verify $(date -u)"
  $SB verify --devices "${SETS##*,}" --strategy single-process,chainermn --impl sinebench,graph \
    --precision "$PRECISIONS"
  echo "verify exit: $?"
  echo "== GPU tests of the scaling axes $(date -u)"
  python3 -m pytest -q -p no:cacheprovider tests/test_scaling_gpu.py 2>&1 | tail -4
fi
for step in "${STEPS[@]}"; do
  name=${step%%|*}
  read -ra args <<< "${step#*|}"
  echo "== $name $(date -u)"
  $SB sweep "${RUN[@]}" "${args[@]}"
done
if [ "${REPORT:-0}" != 0 ]; then
  echo "== report $(date -u)"
  $SB report "$RES"
fi
echo "== done $(date -u)"
