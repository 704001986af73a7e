"""pytest-benchmark: one closed-loop evaluation (warm-up + ~900 free-running
steps), the fast NumPy evaluator against Chainer's step-by-step reference.
The training loop runs one every ``eval_every`` updates, outside the timed
updates but inside a run's wall time."""
import pytest

import sinelstm  # noqa: F401
from sinelstm.data import SineData
from sinelstm.evaluate import closed_loop
from sinelstm.model import SineLSTM
from sinelstm.quality import closed_loop_fast


@pytest.mark.parametrize("n_units", [5, 32, 256])
@pytest.mark.parametrize("evaluator", [closed_loop_fast, closed_loop], ids=["numpy", "chainer"])
def test_closed_loop(benchmark, evaluator, n_units):
    model, data = SineLSTM(n_units, seed=0), SineData()
    benchmark.extra_info.update(n_units=n_units, evaluator=evaluator.__name__)
    benchmark(evaluator, model, data)
