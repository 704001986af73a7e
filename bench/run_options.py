"""The options that define one training run, shared by ``sweep`` and
``train``, and the :class:`TrainConfig` they make. Every default is the
library's (:class:`sinelstm.config.TrainConfig`), so that a run from the
command line and one from Python train the same thing; a value the library
refuses is bad input (one line, exit 2)."""
from dataclasses import replace

import click

from sinelstm.config import Budget, TrainConfig
from sinelstm.recipes import RECIPES

from bench.options import choice_list, fail, positive

DEFAULT = TrainConfig()


def training_options(fn):
    """The options that shape one training run, shared by sweep and train;
    every default is the library's (:class:`sinelstm.config.TrainConfig`)."""
    options = [
        click.option("--recipe", default=DEFAULT.recipe.name, show_default=True,
                     help=f"Training recipe, from {', '.join(RECIPES)}: window, burn-in and learning-rate "
                          "schedule ('article': the article's 10-step windows; 'quality_small' for n_units "
                          "below 16; sweep takes several)."),
        click.option("--seqlen", default=None, type=int, callback=positive("seqlen"),
                     help="BPTT window length [default: the recipe's]."),
        click.option("--updates", default=DEFAULT.budget.updates, show_default=True, callback=positive("updates"),
                     help="Timed updates per run (at most)."),
        click.option("--eval-every", default=DEFAULT.eval_every, show_default=True, callback=positive("eval-every"),
                     help="Updates between evaluations (timed apart from training)."),
        click.option("--quality-target", default=DEFAULT.quality_target, show_default=True,
                     callback=positive("quality-target"),
                     help="Closed-loop RMSE over the whole horizon that counts as generating the sine."),
        click.option("--until-quality/--full-budget", default=True, show_default=True,
                     help="Stop a run at the quality target, or run its whole budget."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def recipes(text: str, seqlen: int | None) -> list:
    """The named recipes, each with ``--seqlen`` when given."""
    try:
        return [RECIPES[name] if seqlen is None else replace(RECIPES[name], seqlen=seqlen)
                for name in choice_list("recipe", text, list(RECIPES))]
    except ValueError as exc:
        fail(f"--seqlen {seqlen}: {exc}")


def config(recipe, updates: int, warmup: int = DEFAULT.budget.warmup, max_seconds: float | None = None,
           host_gate: float | None = DEFAULT.budget.host_gate, **settings) -> TrainConfig:
    """A training config from the library's defaults and these settings;
    settings the library refuses are bad input."""
    limits = budget(updates=updates, seconds=max_seconds, warmup=warmup, host_gate=host_gate)
    try:
        return replace(DEFAULT, recipe=recipe, budget=limits, **settings)
    except ValueError as exc:
        fail(str(exc))


def budget(**settings) -> Budget:
    try:
        return Budget(**settings)
    except ValueError as exc:
        fail(f"--{str(exc).replace('seconds', 'max-seconds', 1)}")


def advice(cfg: TrainConfig) -> list:
    """Warnings about settings that run but cannot answer the question."""
    out = []
    zero = cfg.data.amplitude / 2 ** 0.5  # the RMSE of predicting 0 for a sine
    if cfg.quality_target >= zero:
        out.append(f"--quality-target {cfg.quality_target:g} is no better than predicting 0 (RMSE {zero:.2f}): "
                   f"every run will 'generate the sine' at once")
    return out
