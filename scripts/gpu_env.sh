# Sourced by the GPU scripts: make a bare, offline GPU machine ready to run
# sinebench from this tree (the carried Chainer wheel, PYTHONPATH, NCCL
# settings, the commit), and name its results folder.
#
#   scripts/build_chainer_wheel.sh      # once, where there is network
#   git rev-parse HEAD > .commit        # a copied tree has no .git
cd "$(dirname "${BASH_SOURCE[0]}")/.."
gpu_tag() {  # "NVIDIA H100 80GB HBM3" x 2 -> h100x2
  nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null |
    awk '{for (i = 1; i <= NF; i++) if ($i ~ /[0-9]/ && $i !~ /GB$/) {t = tolower($i); break}} END {print (t ? t : "gpu") "x" NR}'
}
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
# A copied tree has no .git, or a stale one: .commit (written when copying)
# says which commit it is; without it env.json asks git.
if [ -z "${SINEBENCH_GIT_COMMIT:-}" ] && [ -s .commit ]; then
  export SINEBENCH_GIT_COMMIT=$(cat .commit)
fi
if ! python3 -c "import sinelstm, chainer" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SB="python3 -m bench.cli"

start_log() {  # start_log COMMAND: log into $RES/log.txt, name the machine
  mkdir -p "$RES"
  exec > >(tee -a "$RES/log.txt") 2>&1
  export SINEBENCH_COMMAND=${SINEBENCH_COMMAND:-"$1"}
  echo "== machine $(date -u)"
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
}
