"""pytest-benchmark: one training update per available device set.

    pytest --benchmark-only            # timed (GPU synchronized per round)
    pytest                              # each body once, as a smoke test

Timing goals are read off these and off sweeps, never asserted in
unit tests.
"""
import pytest

import sinelstm  # noqa: F401
import chainer

from sinelstm.devices import gpu_count, parse_device_set
from sinelstm.config import TrainConfig
from sinelstm.recipes import RECIPES
from sinelstm.strategy import SingleProcess

N_GPUS = gpu_count()
DEVICE_SETS = ["cpu", "cpu+cpu"] + (["0"] if N_GPUS else []) + (["0+1"] if N_GPUS > 1 else [])
SIZES = [(10, 5), (256, 128)] + ([(4096, 1024)] if N_GPUS else [])


@pytest.mark.parametrize("recipe", ["article", "quality"])
@pytest.mark.parametrize("batch,units", SIZES, ids=lambda v: str(v))
@pytest.mark.parametrize("impl", ["sinebench", "article"])
@pytest.mark.parametrize("spec", DEVICE_SETS)
def test_update(benchmark, spec, impl, batch, units, recipe):
    device_set = parse_device_set(spec)
    if not device_set.is_gpu and batch * units * RECIPES[recipe].seqlen > 256 * 128 * 10:
        pytest.skip("seconds per update on a CPU")
    cfg = TrainConfig(batchsize=batch, n_units=units, impl=impl, recipe=RECIPES[recipe])
    updater = SingleProcess(device_set).make_updater(cfg)

    def update():
        updater.update()
        updater.synchronize()  # a round ends when the GPU is done

    with chainer.using_config("type_check", False):
        for _ in range(3):  # compile kernels, fill memory pools
            update()
        benchmark.extra_info.update(devices=spec, impl=impl, recipe=recipe, batchsize=batch, n_units=units,
                                    gpu=_gpu_name(device_set))
        benchmark(update)


def _gpu_name(device_set) -> str:
    if not device_set.is_gpu:
        return ""
    from bench.worker import gpu_name

    return gpu_name(device_set)
