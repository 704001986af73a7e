#!/usr/bin/env bash
# The per-update timing sweep, on a bare machine without network, in one
# command: install the carried Chainer wheel, verify, GPU tests, the sweep
# (the article's 10-step windows, the whole budget per run), and its report.
# scripts/gpu_ttq.sh is the time-to-quality sweep.
#
#   scripts/build_chainer_wheel.sh      # once, where there is network
#   git rev-parse HEAD > .commit        # a copied tree has no .git
#   scripts/gpu_run.sh                  # on the GPU machine
#
# Results go to RES (default results/<gpu>x<count>-<date>, e.g.
# results/h100x2-2026-11-27).
# The sweep goes round by round (every configuration once, then the article
# baseline at the grid's corners, then the next repeat), so a run cut short
# still covers the whole grid; rerunning resumes where it stopped. Set
# SKIP_CHECKS=1 to go straight to the sweep when resuming, REPORT=0 to leave
# the report for later.
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh"
RES=${RES:-results/$(gpu_tag)-$(date +%F)}
REPEATS=${REPEATS:-3}
start_log "RES=$RES REPEATS=$REPEATS scripts/gpu_run.sh"
python3 -c "import sinelstm, chainer, cupy, numpy; print('chainer', chainer.__version__, 'cupy', cupy.__version__, 'numpy', numpy.__version__)"
if [ -z "${SKIP_CHECKS:-}" ]; then
  echo "== verify"
  $SB verify --devices 0+1 --strategy single-process,chainermn --impl sinebench,article; echo "verify exit: $?"
  echo "== tests (GPU tests included)"
  python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_core.py tests/test_fused.py 2>&1 | tail -4
fi

BUDGET=(--recipe article --full-budget --updates 1500 --max-seconds 1.5 --warmup 3 --no-report --no-progress
        --out "$RES")
GRID=(--devices cpu,0,0+1 --strategy single-process,chainermn)
for r in $(seq 1 "$REPEATS"); do
  echo "== sweep round $r $(date -u)"
  $SB sweep "${GRID[@]}" --impl sinebench --batchsize 10,100,1000,4096 --units 5,50,256,1024 --repeats "$r" "${BUDGET[@]}"
  $SB sweep "${GRID[@]}" --impl article --batchsize 10,4096 --units 5,1024 --repeats "$r" "${BUDGET[@]}"
done
if [ "${REPORT:-1}" != 0 ]; then
  echo "== report $(date -u)"
  $SB report "$RES"
fi
echo "== done $(date -u)"
