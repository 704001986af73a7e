"""The project's vocabulary, defined once and free of Chainer, so that the
sweep process, the store and the report can use it without importing a
framework: implementations, strategies, phases of an update, training
recipes and the labels that name a series in tables and charts."""

# The PyTorch reference (sinelstm.torch_ref): what a PyTorch user would run
# instead, as rows of the same sweep. Their names begin with "torch".
TORCH_IMPL, TORCH_GRAPH, TORCH_DDP = "torch", "torch-graph", "torch-ddp"
TORCH_IMPLS = (TORCH_IMPL, TORCH_GRAPH, TORCH_DDP)
# "graph": the whole update compiled as one unit (sinelstm.graph).
GRAPH_IMPL = "graph"
IMPLS = ("sinebench", "article", GRAPH_IMPL) + TORCH_IMPLS
# How a multi-device set trains; a one-device set is always SINGLE_DEVICE.
SINGLE_DEVICE = "single-device"
STRATEGIES = ("single-process", "chainermn")
# The strategy torch-ddp's rows record: one process per device under MPI, as
# chainermn's, exchanging gradients with PyTorch's DistributedDataParallel.
# Implied by the implementation, so not a choice of --strategy.
TORCH_DDP_STRATEGY = "ddp"
# Where an implementation cannot run on the CPU, the one its user would run
# there instead: the CPU side of its CPU-vs-GPU crossover.
CPU_COUNTERPART = {TORCH_GRAPH: TORCH_IMPL}
# Arithmetic of the matrix products (sinelstm.precision); the first is the default.
PRECISIONS = ("fp32", "tf32", "3xtf32")
# The phases of one update, in order, as the profile times them.
PHASES = ("data", "forward", "backward", "communication", "optimizer")
ARTICLE_IMPL = "article"
# The training recipe that reproduces the article's setup (sinelstm.recipes).
ARTICLE_RECIPE = "article"
# What became of a run's attempt to train a model that generates the sine.
REACHED, NOT_REACHED, DIVERGED = "reached", "not reached", "diverged"


def is_torch(impl: str) -> bool:
    return impl in TORCH_IMPLS


def strategies_for(impl: str, n_devices: int, is_gpu: bool, strategies) -> list:
    """The strategies ``impl`` trains a device set with ([] where it cannot):
    sinebench's and the article's run every set, a one-device set alone;
    ``torch`` one device, ``torch-graph`` one GPU, ``torch-ddp`` only
    several devices, always with its own strategy; ``graph`` one device per
    process."""
    if impl == GRAPH_IMPL and n_devices > 1:
        return [s for s in strategies if s == STRATEGIES[1]]
    if impl == TORCH_DDP:
        return [TORCH_DDP_STRATEGY] if n_devices > 1 else []
    if impl in (TORCH_IMPL, TORCH_GRAPH):
        return [SINGLE_DEVICE] if n_devices == 1 and (is_gpu or impl == TORCH_IMPL) else []
    return [SINGLE_DEVICE] if n_devices == 1 else list(strategies)


def one_process_per_device(strategy: str) -> bool:
    """Whether a run of ``strategy`` is an MPI job with a rank per device."""
    return strategy in (STRATEGIES[1], TORCH_DDP_STRATEGY)


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
