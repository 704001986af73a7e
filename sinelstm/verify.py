"""Equivalence check: does a device set train the same model as one device?

Every device set starts from identical weights, sees identical batches and
takes plain SGD steps (Adam's normalization would hide a wrong gradient
scale). After ``updates`` steps the largest parameter difference against the
reference device must stay within ``tolerance``.
"""
from dataclasses import dataclass

import numpy as np

import sinelstm  # noqa: F401
import chainer

from sinelstm.train import TrainConfig, build_updater

TOLERANCE = 1e-5


def verify_config(impl: str = "sinebench", updates: int = 20, n_devices: int = 2, n_units: int = 5) -> TrainConfig:
    """SGD from the seed's weights; 4 windows per device (8 at least), so
    that every device set splits the batch evenly."""
    batchsize = 4 * max(2, n_devices)
    return TrainConfig(
        n_units=n_units, batchsize=batchsize, updates=updates, optimizer="sgd", lr=0.01, impl=impl, warmup=0
    )


def trained_params(cfg: TrainConfig, devices, scale_losses: bool = True, updater_factory=None) -> dict:
    """Parameters (name -> float64 host array) after ``cfg.updates`` updates."""
    with chainer.using_config("type_check", False):
        updater = build_updater(cfg, devices, scale_losses=scale_losses, updater_factory=updater_factory)
        for _ in range(cfg.updates):
            updater.update()
        updater.synchronize()
    return {name: np.asarray(chainer.backends.cuda.to_cpu(p.array), dtype=np.float64)
            for name, p in sorted(updater.model.namedparams())}


def max_param_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


@dataclass
class VerifyResult:
    spec: str
    reference: str
    strategy: str
    impl: str
    updates: int
    max_diff: float
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_diff) and self.max_diff <= self.tolerance)


def verify_device_set(device_set, cfg: TrainConfig | None = None, scale_losses: bool = True) -> VerifyResult:
    """Train ``device_set`` (single-process strategy) and its first device
    alone; compare the parameters."""
    cfg = cfg or verify_config(n_devices=device_set.n_devices)
    devices = device_set.devices()
    reference = trained_params(cfg, devices[:1])
    params = trained_params(cfg, devices, scale_losses=scale_losses)
    return VerifyResult(
        spec=device_set.spec,
        reference=device_set.first_spec,
        strategy="single-process",
        impl=cfg.impl,
        updates=cfg.updates,
        max_diff=max_param_diff(params, reference),
    )
