#!/usr/bin/env bash
# The time-to-quality sweep on a bare GPU machine without network: how long
# the CPU, one GPU and two GPUs (both strategies) take to train a model that
# generates the sine, five seeds per configuration, MLPerf's aggregation.
#
#   scripts/build_chainer_wheel.sh; git rev-parse HEAD > .commit   # here
#   STAGE=small scripts/gpu_ttq.sh      # the article's batch: n_units 5 and 32
#   STAGE=large scripts/gpu_ttq.sh      # larger batches and widths, then the report
#
# LARGE lists the larger sizes as batch:n_units (default "100:128 1000:256").
# Stages write into one folder RES (default results/<gpu>x<count>-ttq-<date>)
# and resume where a cut-short run stopped; STAGE=all runs both. The article's
# recipe runs beside them as the baseline that does not get there.
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=${RES:-results/$(gpu_tag)-ttq-$(date +%F)}
STAGE=${STAGE:-all}
SEEDS=${SEEDS:-5}
start_log "RES=$RES STAGE=$STAGE LARGE=${LARGE:-} scripts/gpu_ttq.sh"
RUN=(--devices cpu,0,0+1 --strategy single-process,chainermn --repeats "$SEEDS" --until-quality
     --max-seconds 30 --eval-every 25 --no-report --no-progress --out "$RES")
if [ "$STAGE" = small ] || [ "$STAGE" = all ]; then
  echo "== article's batch $(date -u)"
  $SB sweep "${RUN[@]}" --recipe quality_small --batchsize 10 --units 5
  $SB sweep "${RUN[@]}" --recipe quality --batchsize 10 --units 32
  echo "== the article's recipe, the baseline $(date -u)"
  $SB sweep "${RUN[@]}" --devices cpu,0 --recipe article --batchsize 10 --units 5 --max-seconds 10
fi
if [ "$STAGE" = large ] || [ "$STAGE" = all ]; then
  echo "== larger batches and widths $(date -u)"
  for size in ${LARGE:-100:128 1000:256}; do  # batch:n_units
    $SB sweep "${RUN[@]}" --recipe quality --batchsize "${size%%:*}" --units "${size##*:}"
  done
  echo "== report $(date -u)"
  $SB report "$RES"
fi
echo "== done $(date -u)"
