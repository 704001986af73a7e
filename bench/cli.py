"""``sinebench``: sweep, report, train, verify, env.

Bad input gets one line on stderr and exit code 2, before anything is
written (:mod:`bench.options`); any other failure one line and exit code 1
(:mod:`bench.errors`).
"""
import errno
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import click

from sinelstm.names import ARTICLE_RECIPE, IMPLS, STRATEGIES, TORCH_DDP, is_torch
from sinelstm.recipes import RECIPES

from bench import axes, errors, interrupt
from bench.grid import SWEEP, grid_size
from bench.launch import MPI_ARGS_ENV
from bench.options import (InputError, check_grid_size, check_impls, check_mpi, choice_list, device_sets, fail,
                           int_list, mpi_args, positive, writable_folder, writable_output)
from bench.run_options import DEFAULT, advice, config, recipes, training_options
from bench.sweep_control import control_options

DEFAULT_OUT = "results/local"
MPI_ARGS_HELP = ("Options for mpiexec in every chainermn run (also from SINEBENCH_MPI_ARGS), e.g. "
                 "\"--hostfile hosts --mca btl_tcp_if_include eth0\" for ranks on several hosts; the rank count "
                 "is the device set's.")


# -- commands ------------------------------------------------------------------
def warn(message: str):
    click.echo(f"sinebench: warning: {message}", err=True)


class Group(click.Group):
    def main(self, *args, **kwargs):
        # Every failure as one line (click prints several for a usage error).
        interrupt.install()
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            errors.die(exc.format_message(), 2 if isinstance(exc, (InputError, click.UsageError)) else exc.exit_code)
        except click.exceptions.Abort:
            errors.die("aborted", 1)
        except Exception as exc:  # noqa: BLE001 - the one place every other failure ends
            if errors.debugging():
                raise
            errors.die(*errors.describe(exc))


@click.group(cls=Group, invoke_without_command=True)
@click.version_option(package_name="sinebench", message="sinebench %(version)s")
@click.pass_context
def main(ctx):
    """When does training an LSTM go faster on one GPU, or on two, than on the
    CPU - and why? Without a command: a sweep with the defaults into
    results/local, then its report."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(sweep)


@main.command()
@click.option("--devices", default=None, help="Device sets, e.g. cpu,0,0+1 [default: cpu, each GPU, all GPUs].")
@click.option("--batchsize", default=None, help=f"Global batch sizes [default: {','.join(map(str, SWEEP.batchsizes))}; "
              "none with --batch-per-device].")
@click.option("--units", default=",".join(map(str, SWEEP.units)), show_default=True, help="LSTM widths (n_units).")
@training_options
@click.option("--max-seconds", default=SWEEP.max_seconds, show_default=True, callback=positive("max-seconds"),
              help="Time budget of each run's timed loop.")
@control_options
@click.option("--warmup", default=DEFAULT.budget.warmup, show_default=True,
              help="Untimed updates before each run.")
@click.option("--impl", default=IMPLS[0], show_default=True, help=f"Implementations, from {', '.join(IMPLS)}.")
@click.option("--strategy", default=STRATEGIES[0], show_default=True,
              help=f"Multi-device strategies, from {', '.join(STRATEGIES)}.")
@click.option("--target-mse", default=DEFAULT.target_mse, show_default=True, callback=positive("target-mse"),
              help="One-step test MSE for time-to-target.")
@click.option("--out", default=DEFAULT_OUT, show_default=True, type=click.Path(path_type=Path),
              help="Results folder; rerunning into it resumes.")
@click.option("--report/--no-report", default=True, show_default=True, help="Render the report at the end.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@click.option("--isolate", is_flag=True,
              help="A fresh process for every run [default: runs of one device set share a worker].")
@click.option("--retries", default=1, show_default=True, type=click.IntRange(min=0),
              help="More tries, after the other runs, for a run that fails with error, timeout, oom or killed. "
                   "A run without an ok row is tried again by every sweep; each attempt stays in runs.csv "
                   "(column attempt) and the report uses the latest.")
@click.option("--dry-run", is_flag=True, help="List the runs and an estimated time; run nothing, write nothing.")
@click.option("--mpi-args", "mpi_words", default=None, envvar=MPI_ARGS_ENV, callback=mpi_args,
              help=MPI_ARGS_HELP)
@axes.sweep_axes
def sweep(devices, batchsize, units, recipe, seqlen, updates, eval_every, quality_target, until_quality,
          max_seconds, repetition, control, warmup, impl, strategy, target_mse, out, report, progress, isolate,
          retries, dry_run, mpi_words, precision, transport, batch_per_device):
    """Run every combination in worker processes; rerun to resume. One sweep
    at a time writes a results folder; SIGINT, SIGTERM or SIGHUP stop it
    with every committed run kept."""
    batches, per_device = axes.batch_axes(batchsize, batch_per_device, SWEEP.batchsizes)
    widths = int_list("units", units)
    impls, strategies = choice_list("impl", impl, IMPLS), choice_list("strategy", strategy, STRATEGIES)
    precs, links = axes.precisions(precision), axes.transport_list(transport)
    # A batch a set cannot split: one unavailable row (bench.grid.why_not).
    sets = device_sets(devices, ranks_elsewhere=bool(mpi_words) and STRATEGIES[0] not in strategies)
    check_impls(impls, sets, strategies)
    if any(ds.n_devices > 1 for ds in sets):
        check_mpi(strategies, impls)
    chosen = recipes(recipe, seqlen)
    axis = dict(precisions=precs, transports=links, batch_per_device=per_device, impls=impls, device_sets=sets,
                strategies=strategies, batchsizes=batches, units=widths, repeats=repetition.rounds, recipes=chosen)
    check_grid_size(grid_size(**axis))
    base = config(chosen[0], updates, warmup, max_seconds, eval_every=eval_every, target_mse=target_mse,
                  quality_target=quality_target, until_quality=until_quality, host_gate=control.host_gate)
    for other in chosen[1:]:
        config(other, updates)  # each recipe's window must fit the data too
    for line in advice(base):
        warn(line)
    specs = axes.expand(base, warn, **axis)
    from bench import plan, sweep_control

    if dry_run:  # the checks of a real sweep, then the list; nothing written
        from bench.store import ResultsError, ResultStore

        if out.exists() and not out.is_dir():
            fail(f"--out {out} is a file, not a folder")
        try:
            done = ResultStore(out).completed_ids() if out.is_dir() else set()
        except ResultsError as exc:
            fail(str(exc))
        click.echo("\n".join(sweep_control.dry_run(specs, out, done, repetition, control)))
        return
    click.echo(plan.devices_line([ds.spec for ds in sets], asked=devices is not None))
    from bench.invocations import check_comparable

    store = open_store(out)  # the lock first: the machine check takes a moment
    try:
        machine = check_comparable(out, control.host_gate)
        settle_store(store)  # only now may the folder change (a refused sweep leaves it as it was)
    except BaseException:  # refused, interrupted or failed: the folder is free again
        store.close()
        raise
    try:
        # before the record, whose load is then the sweep's
        waited = sweep_control.settle(control, sweep_control.runs_left(store, specs, repetition), click.echo)
        control = sweep_control.with_references(control, out)
        record = sweep_control.record(machine, control, repetition, waited)
        invocation = write_env(out, record, specs)
        for line in sweep_control.start_warnings(record):
            warn(line)
        counts = sweep_control.run(specs, store, repetition, control, warn, progress=progress, isolate=isolate,
                                   retries=retries, invocation=invocation)
        click.echo(f"{sweep_control.total(counts)} runs: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
                   + f"; results in {out}/")
        for line in sweep_control.finish(out, invocation, repetition.auto):
            warn(line)
        if report:
            render_report(out, None)
    except interrupt.Interrupted as exc:
        errors.die(f"{exc}; the runs committed so far are kept in {out}/, rerun the same command to resume",
                   128 + exc.signum)
    finally:
        store.close()


def open_store(out: Path):
    from bench.store import ResultsError, ResultStore

    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file, not a folder")
    store = ResultStore(out, warn=warn)
    try:
        store.take()
    except ResultsError as exc:
        fail(str(exc))
    return store


def settle_store(store):
    """Settle a taken folder (:meth:`bench.store.ResultStore.repair`)."""
    from bench.store import ResultsError

    try:
        store.repair()
    except ResultsError as exc:
        fail(str(exc))


def write_env(out: Path, record: dict, specs: list) -> str:
    """Append this invocation's machine, and its NCCL bus bandwidth per
    transport the sweep uses, to env.json; returns its id."""
    from bench import busbw, invocations

    return invocations.append(out, {**record, "busbw": busbw.for_sweep(specs, say=warn)})


def render_report(folder: Path, output: Path | None, compare: Path | None = None):
    from bench.report import render
    from bench.store import ResultsError

    try:
        path = render(folder, output, compare=compare, warn=warn)
    except ResultsError as exc:
        fail(str(exc))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            raise  # the machine's failure, not the path's
        fail(f"cannot write the report: {exc.strerror}: {exc.filename}")
    click.echo(f"report: {path}")


@main.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="HTML file [default: RESULTS_DIR/report.html]; PNGs go beside it.")
@click.option("--compare", type=click.Path(path_type=Path), default=None,
              help="Another results folder (e.g. a published GPU sweep) to set beside this one: a CPU-only "
                   "machine's runs against that machine's GPUs.")
def report(results_dir, output, compare):
    """Render RESULTS_DIR into one self-contained HTML report (also while a
    sweep writes it: the report shows the runs committed so far)."""
    for folder in (results_dir, compare):
        if folder is not None and not folder.is_dir():
            fail(f"{folder} is not a folder of results")
    if compare is not None and compare.resolve() == results_dir.resolve():
        fail("--compare names the results folder itself; give another machine's folder")
    if output is not None and (not output.name or output.is_dir()):
        fail(f"-o {str(output)!r} is a folder; give the report's file name, e.g. -o report.html")
    writable_output(output or results_dir / "report.html")
    render_report(results_dir, output, compare)


@main.command()
@click.option("--devices", default="cpu", show_default=True, help="One device set, e.g. cpu, 0 or 0+1.")
@click.option("--batchsize", default=DEFAULT.batchsize, show_default=True, callback=positive("batchsize"),
              help="Windows per update (global, split over the devices).")
@click.option("--units", default=DEFAULT.n_units, show_default=True, callback=positive("units"),
              help="LSTM width (n_units).")
@training_options
@click.option("--seed", default=DEFAULT.seed, show_default=True, type=click.IntRange(min=0, max=2**32 - 1),
              help="Seed of the weights and the batches.")
@click.option("--impl", default=IMPLS[0], show_default=True, type=click.Choice([i for i in IMPLS if i != TORCH_DDP]),
              help="Implementation: sinebench's, the article's approach, or the PyTorch reference's.")
@click.option("--optimizer", default=DEFAULT.optimizer, show_default=True, type=click.Choice(["adam", "sgd"]),
              help="Optimizer.")
@click.option("--out", default="results/train", show_default=True, type=click.Path(path_type=Path),
              help="Folder for summary.json and the plots.")
@axes.precision_option(many=False)
def train(devices, batchsize, units, recipe, seqlen, updates, eval_every, quality_target, until_quality, seed,
          impl, optimizer, out, precision):
    """One training run, like the article's run_LSTM: by default until the
    model generates the sine. Writes summary.json, the learning curves and
    the closed-loop prediction (PNG) into --out."""
    from bench.single_run import train_and_save

    if "," in devices:
        fail("--devices takes one device set for train")
    if is_torch(impl) and importlib.util.find_spec("torch") is None:  # the sweep's row says 'unavailable'
        fail(f"--impl {impl} needs PyTorch, which is not installed here (uv sync --extra torch)")
    (ds,) = device_sets(devices, [batchsize])
    chosen = recipes(recipe, seqlen)
    if len(chosen) > 1:
        fail("--recipe takes one recipe for train")
    cfg = config(chosen[0], updates, n_units=units, batchsize=batchsize, impl=impl, optimizer=optimizer,
                 seed=seed, eval_every=eval_every, quality_target=quality_target, until_quality=until_quality,
                 precision=axes.one_precision(precision, ds, impl, units))
    from sinelstm.precision import use

    use(cfg.precision)  # before CuPy's first matrix product, which fixes it for this process
    for line in advice(cfg):
        warn(line)
    writable_folder(out)
    with warnings.catch_warnings():  # NumPy's overflow warnings before a divergence
        warnings.simplefilter("ignore", RuntimeWarning)
        click.echo(train_and_save(cfg, ds, out))


@main.command()
@click.option("--devices", default=None, help="Multi-device sets [default: cpu+cpu, and all GPUs if several].")
@click.option("--strategy", default=STRATEGIES[0], show_default=True,
              help=f"Strategies, from {', '.join(STRATEGIES)}.")
@click.option("--impl", default=IMPLS[0], show_default=True, help=f"Implementations, from {', '.join(IMPLS)}.")
@click.option("--recipe", default=ARTICLE_RECIPE, show_default=True,
              help=f"Recipes, from {', '.join(RECIPES)} (another than the article's checks its burn-in and schedule).")
@click.option("--optimizer", default="sgd", show_default=True, help="Optimizers, from sgd, adam.")
@click.option("--updates", default=20, show_default=True, callback=positive("updates"), help="Updates compared.")
@click.option("--mpi-args", "mpi_words", default=None, envvar=MPI_ARGS_ENV, callback=mpi_args,
              help=MPI_ARGS_HELP)
@click.option("--units", default=None, help="LSTM widths [default: 5, and 96 for graph on a GPU].")
@axes.precision_option(many=True)
def verify(devices, strategy, impl, recipe, optimizer, updates, mpi_words, precision, units):
    """Check that each device set trains the same model as its first device alone (identical
    weights and batches; graph against the eager path, on one device too); exit 1 if one differs."""
    from bench import verifying

    strategies = choice_list("strategy", strategy, STRATEGIES)
    sets = device_sets(verifying.default_sets() if devices is None else devices,
                       ranks_elsewhere=bool(mpi_words) and STRATEGIES[0] not in strategies)
    checks = verifying.plan(sets, strategies, choice_list("impl", impl, [i for i in IMPLS if not is_torch(i)]),
                            choice_list("recipe", recipe, list(RECIPES)), axes.precisions(precision),
                            choice_list("optimizer", optimizer, ["sgd", "adam"]), warn, units)
    results = []
    for combo in checks:
        results.append(verifying.check(*combo, updates))
        click.echo(results[-1].line())
    sys.exit(0 if all(r.passed for r in results) else 1)


@main.command()
def env():
    """Print what a sweep records about this machine (env.json)."""
    from bench.envinfo import collect

    click.echo(json.dumps(collect(), indent=2))


if __name__ == "__main__":
    main()
