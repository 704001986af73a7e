"""The article's sine series and its train/test split."""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SineData:
    """``amplitude * sin(frequency * t)`` sampled at ``length`` points over
    ``periods`` cycles of ``t`` in [0, 2*pi*periods]; defaults are the article's."""

    length: int = 1000
    periods: int = 3
    amplitude: float = 0.8
    frequency: float = 2.0
    train_fraction: float = 0.8

    def __post_init__(self):
        if self.length < 4:
            raise ValueError(f"length must be at least 4, got {self.length}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1), got {self.train_fraction}")

    def series(self) -> np.ndarray:
        t = np.linspace(0.0, 2 * np.pi * self.periods, num=self.length)
        return (self.amplitude * np.sin(self.frequency * t)).astype(np.float32)

    @property
    def n_train(self) -> int:
        return int(self.length * self.train_fraction)

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """(train, test): the first ``train_fraction`` of the series, and the rest."""
        x = self.series()
        return x[: self.n_train], x[self.n_train :]
