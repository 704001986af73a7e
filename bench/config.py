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

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        return cls(**json.loads(text))


def expand_grid(*, impls, device_specs, strategies, batchsizes, units, seqlen, repeats, **budget) -> list:
    """Every combination, repeats innermost-but-one so that an interrupted
    sweep already covers the whole grid once. A single-device set runs once
    whatever the strategies; the profile rides on each config's first repeat."""
    runs = []
    for repeat in range(repeats):
        for impl, spec, batch, n in product(impls, device_specs, batchsizes, units):
            n_dev = len(spec.split("+"))
            for strategy in ([SINGLE_DEVICE] if n_dev == 1 else strategies):
                runs.append(RunSpec(impl=impl, devices=spec, strategy=strategy, batchsize=batch,
                                    n_units=n, seqlen=seqlen, repeat=repeat, profile=repeat == 0, **budget))
    return runs
