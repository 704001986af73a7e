"""Training recipes: how windows, loss and learning rate are chosen.

The article trains on random 10-step windows from a zero state with Adam at
lr 1e-3 (``article``). That drives the one-step error to 1e-4..1e-6 and
never yields a model that *generates* the sine: fed its own predictions, it
drifts in period or amplitude (closed-loop RMSE 0.5-0.6 over 900 steps).
What does yield one: long windows whose first half is a burn-in outside the
loss, so the loss is paid on a settled state as in free running, and a
decaying learning rate, so the last updates fine-tune the period (a 2-3 %
period error alone costs RMSE 0.2-0.3). The article's 5 units also need a
ten times higher peak lr, kept safe by gradient clipping.
``experiments/recipe_search.py`` searched the knobs below;
``experiments/README.md`` has the numbers behind every default here.

A :class:`Recipe` is data, free of any framework (the sweep process and the
report name recipes too); the updater reads its burn-in, clipping and
schedule (:mod:`sinelstm.strategy`), the implementations its burn-in
(:mod:`sinelstm.impls`).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """One way to train. Windows are ``seqlen`` steps from a zero state; the
    first ``burn_in`` steps only settle the state and are outside the loss.
    Adam's lr falls exponentially from ``lr`` to ``lr_final`` over
    ``decay_updates`` and stays there (``lr_final=None``: constant).
    ``grad_clip`` is an L2-norm bound on the whole gradient (None: off)."""

    name: str
    seqlen: int
    burn_in: int = 0
    lr: float = 1e-3
    lr_final: float | None = None
    decay_updates: int = 1
    grad_clip: float | None = None

    def __post_init__(self):
        if self.seqlen < 1:
            raise ValueError(f"seqlen must be positive, got {self.seqlen}")
        if not 0 <= self.burn_in < self.seqlen:
            raise ValueError(f"burn_in must be in [0, seqlen), got {self.burn_in} for seqlen {self.seqlen}")
        if self.decay_updates < 1 or self.lr <= 0 or (self.lr_final is not None and self.lr_final <= 0):
            raise ValueError("lr, lr_final and decay_updates must be positive")


RECIPES = {
    # Today's behaviour: 10-step windows, all in the loss, constant lr.
    # Never generates (best closed-loop RMSE ~0.6; shared/seed/NOTES.md).
    "article": Recipe("article", seqlen=10),
    # n_units >= 16: 200-step windows, the first 100 a burn-in, Adam 1e-3
    # decayed to 1e-5 over 4,000 updates. n_units 32, batch 10: 10 of 10
    # seeds at RMSE <= 0.1, after 50-1,350 updates (median 262). Searched as
    # "notes" in experiments/recipe_search.csv.
    "quality": Recipe("quality", seqlen=200, burn_in=100, lr=1e-3, lr_final=1e-5, decay_updates=4000),
    # n_units 5 (the article's size): ten times the lr, decayed twice as
    # slowly, the gradient clipped to norm 1 so the high lr cannot blow up.
    # 9 of 10 seeds, 325-1,100 updates (median 600); at lr 1e-3 1 of 4.
    # Searched as "lr1e-2_d8000_clip1".
    "quality_small": Recipe("quality_small", seqlen=200, burn_in=100, lr=1e-2, lr_final=1e-5,
                            decay_updates=8000, grad_clip=1.0),
}


def lr_at(recipe: Recipe, update: int, peak: float | None = None) -> float:
    """The lr for update ``update`` (0-based): exponential decay from
    ``recipe.lr`` to ``recipe.lr_final`` over ``decay_updates``, then flat;
    ``peak`` replaces ``recipe.lr`` and scales the whole schedule. Exponential,
    not linear or cosine: the period is fine-tuned by the last orders of
    magnitude, and each gets an equal share of the updates."""
    peak = recipe.lr if peak is None else peak
    if recipe.lr_final is None:
        return peak
    frac = min(max(update, 0), recipe.decay_updates) / recipe.decay_updates
    return peak * (recipe.lr_final / recipe.lr) ** frac


def lr_for(recipe: Recipe, batchsize: int) -> float:
    """Adam's peak lr for a global batch of ``batchsize`` windows: the
    recipe's own, whatever the batch.

    Why: the loss is a mean over the batch, so the gradient's scale does not
    grow with the batch, and Adam divides by its running RMS anyway; a larger
    batch only lowers the gradient's noise. So the same lr and schedule is
    the safe rule, and data-parallel runs on N devices, which train the same
    global batch, use exactly the single-device recipe. Evidence
    (experiments/README.md, n_units 32, ``quality``): batch 100 reached RMSE
    0.1 after 200 and 250 updates (2 seeds), batch 10 after a median of 262
    (10 seeds); sqrt scaling (3e-3 at batch 100) after 175 and 200 -- no
    clear gain; n_units 256 reached it at batch 10 and 100 with the same lr.
    Linear scaling was not supported: lr 1e-2 at batch 100 did not reach
    it within 350 updates in 3 of 3 seeds."""
    if batchsize < 1:
        raise ValueError(f"batchsize must be positive, got {batchsize}")
    return recipe.lr
