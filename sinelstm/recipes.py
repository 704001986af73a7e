"""Training recipes: the window a model learns from and the learning-rate
schedule. (Provisional; replaced by the recipe search's module.)"""
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    name: str
    seqlen: int
    burn_in: int = 0
    lr: float = 1e-3
    lr_final: float | None = None
    decay_updates: int = 0


RECIPES = {
    "article": Recipe("article", seqlen=10),
    "quality": Recipe("quality", seqlen=200, burn_in=100, lr=1e-3, lr_final=1e-5, decay_updates=4000),
}


def lr_at(recipe: Recipe, update: int, base: float | None = None) -> float:
    lr = recipe.lr if base is None else base
    if recipe.lr_final is None or not recipe.decay_updates:
        return lr
    frac = min(update / recipe.decay_updates, 1.0)
    return lr * math.exp(frac * math.log(recipe.lr_final / recipe.lr))


def lr_for(recipe: Recipe, batchsize: int) -> float:
    return recipe.lr
