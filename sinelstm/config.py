"""A training run's settings, defined once: what the library's ``train()``,
``sinebench train`` and every sweep row use, with the one set of defaults.

No Chainer here, so that the sweep process and the report can build, store
and read configurations without importing a framework.
"""
import math
from dataclasses import dataclass, field

from sinelstm.data import SineData
from sinelstm.hostspeed import DEFAULT_TOLERANCE, MAX_WAIT_S, TOLERANCE_RANGE
from sinelstm.names import PRECISIONS
from sinelstm.recipes import RECIPES, Recipe


@dataclass(frozen=True)
class Budget:
    """How long a run may take, and how its seconds split.

    The timed loop stops after ``updates`` updates or ``seconds`` seconds,
    whichever comes first. Warm-up (``warmup`` updates on a throwaway model)
    may take a quarter of that time, the per-phase profile (a separate run
    after the timed one) half of it; the sweep's timeout for the whole run is
    derived from those shares plus the start-up allowance, so that no other
    module needs to know them.
    """

    updates: int = 10000
    seconds: float | None = None
    warmup: int = 10
    # Timed updates wait for the host to run at full speed (sinelstm.hostspeed):
    # the probe's tolerance over its fastest, or None to time whatever comes.
    host_gate: float | None = DEFAULT_TOLERANCE

    WARMUP_SHARE = 0.25
    PROFILE_SHARE = 0.5
    # Imports, CUDA context, kernel compilation, evaluation and closed loop.
    STARTUP_S = 180.0
    # A run without a time limit is still given this long before the sweep
    # calls it hung.
    UNLIMITED_S = 600.0

    def __post_init__(self):
        if self.updates < 1:
            raise ValueError(f"updates must be positive, got {self.updates}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be zero or more, got {self.warmup}")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"seconds must be a positive number, got {self.seconds}")
        low, high = TOLERANCE_RANGE
        if self.host_gate is not None and not low <= self.host_gate <= high:
            raise ValueError(f"host-gate must be a fraction from {low:g} to {high:g} or off, got {self.host_gate}")

    @property
    def warmup_seconds(self) -> float:
        return self.seconds * self.WARMUP_SHARE if self.seconds else math.inf

    @property
    def profile_seconds(self) -> float | None:
        return self.seconds * self.PROFILE_SHARE if self.seconds else None

    def timeout_s(self) -> float:
        """Seconds after which the sweep treats the run as hung."""
        timed = self.seconds if self.seconds else self.UNLIMITED_S
        waits = MAX_WAIT_S if self.host_gate is not None else 0.0
        return timed * (1 + self.WARMUP_SHARE + self.PROFILE_SHARE) + self.STARTUP_S + waits


@dataclass(frozen=True)
class TrainConfig:
    """Defaults train a model that generates the sine (the ``quality``
    recipe); ``recipe=RECIPES["article"]`` is the article's setup."""

    n_units: int = 32
    batchsize: int = 10
    recipe: Recipe = field(default_factory=lambda: RECIPES["quality"])
    impl: str = "sinebench"
    optimizer: str = "adam"
    lr: float | None = None  # None: the recipe's rule for this batch size
    seed: int = 0
    eval_every: int = 25
    # Quality: full-horizon closed-loop RMSE at or below this generates the
    # sine (amplitude 0.8; predicting zero scores 0.57).
    quality_target: float = 0.1
    until_quality: bool = False  # stop at the first evaluation that reaches it
    # One-step test MSE that counts as "learned" (time_to_target_s); it says
    # little about generation (shared/seed/NOTES.md).
    target_mse: float = 1e-3
    budget: Budget = field(default_factory=Budget)
    data: SineData = field(default_factory=SineData)
    # How matrix products are computed (sinelstm.precision): fp32, or tf32
    # on GPUs; chosen by the process's environment, checked by train().
    precision: str = PRECISIONS[0]

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        for name in ("n_units", "batchsize", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not (math.isfinite(self.quality_target) and self.quality_target > 0):
            raise ValueError(f"quality_target must be a positive number, got {self.quality_target}")
        if self.seqlen + 1 > self.data.n_train:
            raise ValueError(f"a window of {self.seqlen}+1 points does not fit in the "
                             f"{self.data.n_train} training points")

    @property
    def seqlen(self) -> int:
        return self.recipe.seqlen
