"""Shared pytest set-up: GPU markers skip where CuPy sees too few GPUs, and
benchmarks run once each (untimed) unless ``--benchmark-only`` is given."""
import pytest

import sinelstm  # noqa: F401  (the NumPy 2 shim, before any test imports chainer)
from sinelstm.devices import gpu_count


def pytest_collection_modifyitems(config, items):
    n = gpu_count()
    for item in items:
        if item.get_closest_marker("gpu") and n < 1:
            item.add_marker(pytest.mark.skip(reason="needs CuPy and a CUDA GPU"))
        if item.get_closest_marker("multigpu") and n < 2:
            item.add_marker(pytest.mark.skip(reason="needs two CUDA GPUs"))


def pytest_configure(config):
    # A plain `pytest` runs each benchmark body once as a smoke test.
    if hasattr(config.option, "benchmark_only") and not config.option.benchmark_only:
        config.option.benchmark_disable = True


def pytest_benchmark_update_machine_info(config, machine_info):
    """GPU names, memory, driver and topology beside pytest-benchmark's CPU info."""
    from bench.envinfo import _gpus

    machine_info["gpu"] = _gpus()
