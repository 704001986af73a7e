"""The project's vocabulary, defined once and free of Chainer, so that the
sweep process, the store and the report can use it without importing a
framework: implementations, strategies, phases of an update, training
recipes and the labels that name a series in tables and charts."""

IMPLS = ("sinebench", "article")
# How a multi-device set trains; a one-device set is always SINGLE_DEVICE.
SINGLE_DEVICE = "single-device"
STRATEGIES = ("single-process", "chainermn")
# Arithmetic of the matrix products (sinelstm.precision); the first is the default.
PRECISIONS = ("fp32", "tf32")
# The phases of one update, in order, as the profile times them.
PHASES = ("data", "forward", "backward", "communication", "optimizer")
ARTICLE_IMPL = "article"
# The training recipe that reproduces the article's setup (sinelstm.recipes).
ARTICLE_RECIPE = "article"
# What became of a run's attempt to train a model that generates the sine.
REACHED, NOT_REACHED, DIVERGED = "reached", "not reached", "diverged"


def device_label(devices: str, strategy: str) -> str:
    """'CPU', '1 GPU', '2 GPUs (chainermn)', '2 CPU replicas (single-process)'."""
    parts = devices.split("+")
    if parts[0] == "cpu":
        base = "CPU" if len(parts) == 1 else f"{len(parts)} CPU replicas"
    else:
        base = f"{len(parts)} GPU{'s' if len(parts) > 1 else ''}"
    return base if len(parts) == 1 else f"{base} ({strategy})"


def series_label(devices: str, strategy: str, impl: str) -> str:
    """The one name of a series in every table, sentence and legend:
    the device label, with ' · article' for the article's implementation."""
    label = device_label(devices, strategy)
    return f"{label} · {impl}" if impl != IMPLS[0] else label
