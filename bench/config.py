"""One benchmark run's configuration, its id, and the sweep grid."""
import hashlib
import json
from dataclasses import asdict, dataclass
from itertools import product

SINGLE_DEVICE = "single-device"
STRATEGIES = ("single-process", "chainermn")


@dataclass(frozen=True)
class RunSpec:
    impl: str
    devices: str  # device-set spec, e.g. "0+1"
    strategy: str  # "single-device" for one device, else one of STRATEGIES
    batchsize: int
    n_units: int
    seqlen: int
    repeat: int
    updates: int
    max_seconds: float | None
    warmup: int
    eval_every: int
    target_mse: float
    seed: int = 0
    optimizer: str = "adam"
    profile: bool = False  # also run the per-phase profile (first repeat only)

    @property
    def n_devices(self) -> int:
        return len(self.devices.split("+"))

    @property
    def run_id(self) -> str:
        """Readable, and unique per configuration: rerunning a sweep skips a
        run whose id is already recorded."""
        digest = hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]
        return (f"{self.impl}-{self.strategy}-{self.devices}-b{self.batchsize}-u{self.n_units}"
                f"-s{self.seqlen}-r{self.repeat}-{digest}")

    @property
    def label(self) -> str:
        strategy = "" if self.strategy == SINGLE_DEVICE else f" [{self.strategy}]"
        return f"{self.impl} {self.devices}{strategy} b={self.batchsize} n={self.n_units} #{self.repeat}"

    def to_dict(self) -> dict:
        return asdict(self)


def expand_grid(*, impls, device_specs, strategies, batchsizes, units, seqlen, repeats, **budget) -> list:
    """Every combination, repeats outermost so that an interrupted sweep
    already covers the whole grid once; within a repeat, runs of one device
    set and strategy are neighbours, so that they share a worker process. A
    single-device set runs once whatever the strategies; the profile rides on
    each config's first repeat."""
    runs = []
    for repeat, impl, spec in product(range(repeats), impls, device_specs):
        for strategy in [SINGLE_DEVICE] if len(spec.split("+")) == 1 else strategies:
            for batch, n in product(batchsizes, units):
                runs.append(RunSpec(impl=impl, devices=spec, strategy=strategy, batchsize=batch,
                                    n_units=n, seqlen=seqlen, repeat=repeat, profile=repeat == 0, **budget))
    return runs
