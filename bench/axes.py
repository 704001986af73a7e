"""The sweep's scaling axes on the command line: precision, NCCL transport
and weak scaling (``--batch-per-device``), shared by ``sweep``, ``train`` and
``verify`` where they apply; kept here so that ``cli.py`` stays a list of
commands."""
import click

from sinelstm.names import PRECISIONS

from bench import transports
from bench.options import choice_list, fail, int_list


def precision_option(many: bool):
    return click.option("--precision", default=PRECISIONS[0], show_default=True,
                        help=f"Arithmetic of the matrix products, from {', '.join(PRECISIONS)} (tf32: GPUs only, "
                             "CUPY_TF32=1 in the run's process; 3xtf32: near FP32's accuracy from TF32 tensor cores, "
                             "--impl graph above 64 units only)" + ("; several, comma-separated." if many else "."))


def sweep_axes(fn):
    """--precision, --transport and --batch-per-device of ``sweep``."""
    options = [
        precision_option(many=True),
        click.option("--transport", default=transports.DEFAULT, show_default=True,
                     help=f"NCCL transports, from {', '.join(transports.TRANSPORTS)}: each chainermn run on 2 GPUs "
                          "or more is repeated with each (the others run once, as default)."),
        click.option("--batch-per-device", default=None,
                     help="Weak scaling: per-device batch sizes; each set runs at this batch times its devices "
                          "(rows say scaling=weak). Without --batchsize, only these run."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def precisions(text: str) -> list:
    return choice_list("precision", text, PRECISIONS)


def transport_list(text: str) -> list:
    return choice_list("transport", text, list(transports.TRANSPORTS))


def batch_axes(batchsize: str | None, batch_per_device: str | None, default: tuple) -> tuple:
    """(global batches, per-device batches): ``--batchsize`` falls back to
    the sweep's default only when no per-device batch is given."""
    per_device = int_list("batch-per-device", batch_per_device) if batch_per_device is not None else []
    if batchsize is None:
        return (list(default) if not per_device else []), per_device
    return int_list("batchsize", batchsize), per_device


def one_precision(text: str, device_set, impl: str, n_units: int) -> str:
    """``train``'s one precision, refused where it means nothing."""
    from sinelstm.precision import why_not

    if "," in text:
        fail("--precision takes one precision for train")
    (precision,) = precisions(text)
    if reason := why_not(precision, impl, device_set.is_gpu, n_units):
        fail(f"--precision {precision}: {reason}")
    return precision


def expand(base, warn, *, device_sets, strategies, precisions, transports, **grid) -> list:
    """The sweep's runs (:func:`bench.grid.expand_grid`), after warning
    about the combinations it leaves out; none at all is bad input."""
    from bench.grid import expand_grid, skipped, why_not

    left_out = skipped(device_sets, strategies, precisions, transports, grid.get("impls", ()))
    specs = expand_grid(base, device_specs=[ds.spec for ds in device_sets], strategies=strategies,
                        precisions=precisions, transports=transports, **grid)
    if not specs:  # bad input: one line, with the reasons
        fail("nothing to run: " + ("; ".join(left_out) or "every combination was left out"))
    cannot = list(dict.fromkeys(why for s in specs if (why := why_not(s))))
    if len(cannot) and all(why_not(s) for s in specs):
        fail(cannot[0])  # nothing could run: bad input, not a sweep of failures
    for line in left_out:  # something runs: the rest is said, not refused
        warn(line)
    for why in cannot:
        warn(f"{why}: recorded as unavailable, the other runs go on")
    return specs
