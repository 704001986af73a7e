#!/usr/bin/env bash
# The whole GPU run, on a bare machine without network, in one command:
# install the carried Chainer wheel, verify, GPU tests, sweep; the report is
# rendered from the CSVs.
#
#   scripts/build_chainer_wheel.sh          # once, on a machine with network
#   OUT=/some/dir scripts/gpu_run.sh [sweep options...]
#
# Results go to $OUT/res (CSV + env.json), the log to $OUT/log.txt. With no
# sweep options it runs the published grid (results/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu-$(date +%Y%m%d)}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
if ! python3 -c "import chainer" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/chainer-*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# mpiexec beside an MPI that mpi4py was built with, if it is not on PATH.
command -v mpiexec >/dev/null || for d in /usr/local/bin /opt/*/bin /usr/lib64/openmpi/bin /opt/hpcx/ompi/bin; do
  [ -x "$d/mpiexec" ] && export PATH="$PATH:$d" && break; done

echo "== machine"; date -u; nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
nvidia-smi topo -m 2>/dev/null | head -5
python3 -c "import sinelstm, chainer, cupy, numpy; print('chainer', chainer.__version__, 'cupy', cupy.__version__, 'numpy', numpy.__version__, 'gpus', cupy.cuda.runtime.getDeviceCount())"
echo "mpiexec: $(command -v mpiexec)"; mpiexec --version 2>&1 | head -1

SB="python3 -m bench.cli"
echo "== verify"
$SB verify --devices 0+1 --strategy single-process,chainermn --impl sinebench,article
echo "verify exit: $?"
echo "== GPU tests"
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_core.py 2>&1 | tail -15
echo "== sweep"
if [ $# -eq 0 ]; then
  set -- --devices cpu,0,0+1 --strategy single-process,chainermn --impl sinebench \
    --batchsize 10,100,1000,4096 --units 5,50,256,1024 --repeats 3 --updates 300 --max-seconds 4 --warmup 5
fi
$SB sweep --out "$OUT/res" --no-report --no-progress "$@"
echo "sweep exit: $?"
date -u
