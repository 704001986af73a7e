"""``sinebench verify``'s checks, one per device set, strategy,
implementation, recipe and precision, and the line each prints. A check runs
in this process when it can (``single-process`` in fp32, unless this process
was started with ``CUPY_TF32=1``), otherwise in processes of its own:
``chainermn`` needs one MPI rank per device, and a precision is fixed for the
life of a process (:mod:`sinelstm.precision`).
Each precision has its own tolerance (:func:`sinelstm.precision.tolerance`).
``graph`` on a GPU is checked at two widths, one for each of its compiled
paths (the persistent kernels, and the captured cuBLAS products above
``graph_cuda.MAX_UNITS``)."""
import itertools

from sinelstm.names import GRAPH_IMPL, PRECISIONS, STRATEGIES

UNITS = 5  # verify_config's width
GEMM_UNITS = 96  # a width above graph_cuda.MAX_UNITS: the graph path's cuBLAS products
# Recipes tuned for n_units below 16: with Adam, quality_small's lr 1e-2
# makes a 96-unit model chaotic enough to grow rounding differences past the
# tolerance within 20 updates (seen: 2.5e-4 on an H200); SGD agrees within
# 1e-5, and checks the recipe's clipping on that path.
NARROW_RECIPES = ("quality_small",)


def default_sets() -> str:
    """cpu+cpu, and every GPU of this machine as one set where there are several."""
    from sinelstm.devices import gpu_count

    n = gpu_count()
    return "cpu+cpu" + ("," + "+".join(str(i) for i in range(n)) if n > 1 else "")


def plan(sets, strategies, impls, recipes, precisions, optimizers, warn, units=None) -> list:
    """The checks to run; bad input (nothing to compare, bad --units, MPI
    missing for chainermn) exits 2. ``units``: --units' text, or None."""
    from bench.options import check_mpi, fail, int_list
    from sinelstm.verify import reference_impl

    if all(reference_impl(im) == im for im in impls) and (single := [ds.spec for ds in sets if ds.n_devices == 1]):
        fail(f"verify compares a multi-device set with its first device alone; {single[0]!r} is one device "
             f"(try cpu+cpu, or 0+1)")
    widths = int_list("units", units) if units is not None else None
    checks, left_out = combinations(sets, strategies, impls, recipes, precisions, optimizers, widths)
    if not checks:  # bad input: one line, with the reasons
        fail("nothing to check: " + ("; ".join(left_out) or "every combination was left out"))
    for note in left_out:
        warn(note)
    check_mpi(strategies)
    return checks


def combinations(sets, strategies, impls, recipes, precisions, optimizers=("sgd",), units=None) -> tuple:
    """(checks to run, lines about those left out): a precision other than
    fp32 means nothing on the CPU; a one-device set is checked only for an
    implementation with another reference (``graph`` against the eager
    one), once whatever the strategies; ``graph`` runs several devices one
    per process only. ``units`` (``--units``) replaces the default widths
    (UNITS, and GEMM_UNITS for graph on a GPU)."""
    from sinelstm.precision import why_not
    from sinelstm.verify import reference_impl

    checks, left_out = [], []

    def leave_out(note):
        if note not in left_out:
            left_out.append(note)

    for ds, strat, im, rec, prec, opt in itertools.product(sets, strategies, impls, recipes, precisions, optimizers):
        if ds.n_devices == 1 and (reference_impl(im) == im or strat != strategies[0]):
            continue
        if ds.n_devices > 1 and im == GRAPH_IMPL and strat != STRATEGIES[1]:
            leave_out(f"{im} not checked on {ds.spec} with {strat}: it runs one device per process "
                      f"(--strategy {STRATEGIES[1]})")
            continue
        widths = units or ((UNITS, GEMM_UNITS) if im == GRAPH_IMPL and ds.is_gpu else (UNITS,))
        for width in widths:
            if reason := why_not(prec, im, ds.is_gpu, width):
                # where some width of the set checks the precision, the others need no line
                if not any(why_not(prec, im, ds.is_gpu, u) is None for u in (units or (UNITS, GEMM_UNITS))):
                    leave_out(f"{prec} not checked on {ds.spec} with {im}: {reason}")
                continue
            if width >= GEMM_UNITS and rec in NARROW_RECIPES and opt == "adam":
                leave_out(f"n_units {width} not checked with {rec} and Adam, a recipe for narrow models: check it "
                          f"with --recipe quality (SGD checks its clipping)")
                continue
            checks.append((ds, strat, im, rec, prec, opt, width))
    return checks, left_out


def check(ds, strategy: str, impl: str, recipe: str, precision: str, optimizer: str, n_units: int, updates: int):
    from bench.launch import verify_in_subprocess
    from sinelstm.precision import process_precision

    # On the CPU the variable means nothing; on a GPU this process's
    # precision is whatever CUPY_TF32 it was started with.
    here = precision == PRECISIONS[0] and (not ds.is_gpu or process_precision() == precision)
    if (strategy == STRATEGIES[1] and ds.n_devices > 1) or not here:
        return verify_in_subprocess(ds, impl, updates, recipe, precision, strategy, optimizer, n_units)
    from sinelstm.recipes import RECIPES
    from sinelstm.verify import verify, verify_config

    return verify(ds, strategy, verify_config(impl=impl, updates=updates, n_devices=ds.n_devices,
                                              recipe=RECIPES[recipe], optimizer=optimizer, n_units=n_units))
