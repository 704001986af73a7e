#!/usr/bin/env bash
# Issue 14's check: how far repeats of one configuration disagree where the
# host bounds the time (batch 10 / n_units 5), with and without the
# host-speed gate (sinelstm.hostspeed). Both sweeps pinned, --repeats auto
# (rounds until each median's 95 % interval is within ±3 %, at most 8):
#
#   ungated: --host-gate off (how sweeps ran until the gate)
#   gated:   the default gate (updates timed only at the host's full speed)
#
# on cpu, 0, and 0+1 with both strategies, fixed-length runs (--full-budget)
# of 0.5 s each; then a table of the spreads (slowest repeat median over
# fastest, minus 1) per configuration, for both. About 5-8 minutes on 2 GPUs.
#
#   scripts/gpu_trust.sh                                  # on the GPU machine
#   DEVICES=cpu,cpu+cpu RES=results/cpu-trust scripts/gpu_trust.sh   # a CPU-only rehearsal
#
# NOISE_S=60 first times the gate's probes beside updates for that long
# (scripts/host_noise.py, pinned to one core; RES/host_noise.csv and .txt).
#
# Results go to RES/ungated and RES/gated (default RES:
# results/<gpu>x<count>-trust-<date>); the table is also in RES/spread.txt.
# IMPL=graph times the compiled update instead of the eager one (graph runs
# one device per process: no single-process rows). Rerunning resumes both
# sweeps where they stopped. VARIANTS names other
# sweeps, in order, each FOLDER:OPTIONS with the options' words joined by
# commas, e.g. VARIANTS="warm:--warmup-rounds,1 gated:" (the default:
# "ungated:--host-gate,off gated:"). SWEEP_TIMEOUT=S ends each sweep after S
# seconds (resumable; the table reads what it wrote). ACROSS=1 also compares
# the sweeps' reported medians with each other (scripts/trust_spread.py
# --across; RES/across.txt): with VARIANTS="s1: s2: s3:", three independent
# gated sweeps, how far a figure moves when the sweep is run again. A word
# TREE=PATH among a variant's options runs that sweep from another source
# tree (an older commit's sinelstm/ and bench/, with its .commit), e.g.
# VARIANTS="new1: old1:TREE=.old new2: old2:TREE=.old"; each sweep's
# env.json names under "source" the tree its code came from. On a machine
# lent moments ago, VARIANTS="s1:--settle s2: s3:" lets the first sweep wait
# until the machine has been up 5 minutes (its first minutes run slower).
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=$(realpath -m "${RES:-results/$(gpu_tag)-trust-$(date +%F)}")  # absolute: a variant may run from another tree
DEVICES=${DEVICES:-cpu,0,0+1}
start_log "RES=$RES DEVICES=$DEVICES scripts/gpu_trust.sh"
COMMON=(--devices "$DEVICES" --strategy single-process,chainermn --batchsize 10 --units 5 --recipe article
        --full-budget --updates 1500 --max-seconds 0.5 --warmup 3 --no-report --no-progress --impl "${IMPL:-sinebench}")
if [ -n "${NOISE_S:-}" ]; then
  echo "== probes beside updates for $NOISE_S s $(date -u)"
  python3 scripts/host_noise.py --seconds "$NOISE_S" --cores 5 --devices cpu,0 --csv "$RES/host_noise.csv" |
    tee "$RES/host_noise.txt"
fi
VARIANTS=${VARIANTS:-"ungated:--host-gate,off gated:"}
folders=()
for v in $VARIANTS; do
  folder=${v%%:*}
  IFS=, read -ra words <<< "${v#*:}"
  opts=() tree=. commit=${SINEBENCH_GIT_COMMIT:-}
  for w in ${words[@]+"${words[@]}"}; do
    if [[ $w == TREE=* ]]; then  # python -m puts the working folder first on the path: run from inside the tree
      tree=${w#TREE=} commit=$(cat "${w#TREE=}/.commit")
    else
      opts+=("$w")
    fi
  done
  folders+=("$RES/$folder")
  echo "== $folder: pinned, --repeats auto ${opts[*]-} from $tree $(date -u)"
  (cd "$tree" && SINEBENCH_GIT_COMMIT=$commit ${SWEEP_TIMEOUT:+timeout "$SWEEP_TIMEOUT"} $SB sweep "${COMMON[@]}" \
    --repeats auto --target-ci 0.03 --max-repeats 8 ${opts[@]+"${opts[@]}"} --out "$RES/$folder")
done
echo "== spread of the repeat medians $(date -u)"
python3 scripts/trust_spread.py "${folders[@]}" | tee "$RES/spread.txt"
if [ "${ACROSS:-0}" != 0 ]; then
  echo "== the reported medians, sweep to sweep $(date -u)"
  python3 scripts/trust_spread.py --across "${folders[@]}" | tee "$RES/across.txt"
fi
echo "== done $(date -u)"
