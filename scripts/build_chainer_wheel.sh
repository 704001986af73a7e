#!/usr/bin/env bash
# Build Chainer 7.8.1's wheel (PyPI has only an sdist, whose setup.py needs
# setuptools<70) into .whl/, for machines without network (scripts/gpu_run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
venv=$(mktemp -d)
python3 -m venv "$venv"
"$venv/bin/pip" install -q "setuptools<70" wheel
"$venv/bin/pip" wheel -q --no-build-isolation --no-deps -w .whl chainer==7.8.1
# threadpoolctl (pure Python) for the pinned workers, where a GPU machine lacks it.
"$venv/bin/pip" download -q --no-deps -d .whl threadpoolctl
rm -rf "$venv"
ls .whl
