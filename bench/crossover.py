"""Where one GPU starts to beat the CPU, from the measured cells and from the
cost model, and whether the two agree. The report states the model's
crossover only when both fits are good and the model puts every measured
cell on its measured side; otherwise it states the measured one, because a
fit that misplaces a cell the reader can see in the map is not an answer."""
from dataclasses import dataclass

import pandas as pd

from bench import analysis
from sinelstm.flops import count_flops
from sinelstm.names import SINGLE_DEVICE


@dataclass(frozen=True)
class Measured:
    """FLOPs per update of the measured cells on each side of 1.0x."""

    cpu_wins_up_to: float | None  # the most FLOPs of a cell where the CPU is faster (None: no such cell)
    gpu_wins_from: float | None  # the fewest FLOPs of a cell where the GPU is faster
    first_win: tuple | None  # (batch, n_units) of that cell
    last_loss: tuple | None  # (batch, n_units) of the CPU's largest win
    cells: int

    @property
    def clean(self) -> bool:
        """One threshold splits the cells: every GPU win carries more FLOPs than every CPU win."""
        return None in (self.cpu_wins_up_to, self.gpu_wins_from) or self.gpu_wins_from > self.cpu_wins_up_to


def measured(main: pd.DataFrame, gpu: str, seqlen: int, impl: str) -> Measured | None:
    s = analysis.speedups(main, ("cpu", SINGLE_DEVICE), (gpu, SINGLE_DEVICE))
    if s.empty:
        return None
    flops = pd.Series({k: count_flops(k[1], k[0], seqlen, impl) for k in s.index})
    wins, losses = flops[s > 1], flops[s <= 1]
    return Measured(float(losses.max()) if len(losses) else None, float(wins.min()) if len(wins) else None,
                    wins.idxmin() if len(wins) else None, losses.idxmax() if len(losses) else None, len(s))


@dataclass(frozen=True)
class Agreement:
    misplaced: tuple  # (batch, n_units) cells the model puts on the wrong side of 1.0x
    bad_fits: tuple  # labels of the fits whose error is too large to read a crossover off
    cells: int

    @property
    def trusted(self) -> bool:
        return not self.misplaced and not self.bad_fits


def agreement(models: dict, main: pd.DataFrame, gpu: str, seqlen: int, impl: str) -> Agreement | None:
    cpu_m, gpu_m = models.get(analysis.CPU), models.get(analysis.ONE_GPU)
    s = analysis.speedups(main, ("cpu", SINGLE_DEVICE), (gpu, SINGLE_DEVICE))
    if cpu_m is None or gpu_m is None or s.empty:
        return None
    predicted = analysis.predicted_speedup(models, seqlen, impl)
    misplaced = tuple(k for k, v in s.items() if (predicted(*k) > 1) != (v > 1))
    return Agreement(misplaced, tuple(m.label for m in (cpu_m, gpu_m) if not m.drawn), len(s))
