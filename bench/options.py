"""Checking the command line's values, before anything runs or is written.

Every problem is an :class:`InputError`: one line on stderr and exit code 2.
A list option refuses an empty item (``10,,100``) and an item given twice
(which would run one configuration twice and count the copy as a repeat).
"""
import math
from pathlib import Path

import click

from sinelstm.names import GRAPH_IMPL, STRATEGIES, TORCH_DDP, TORCH_GRAPH

MAX_RUNS = 100_000  # a larger grid is a typo: it would not finish in a year


class InputError(click.ClickException):
    exit_code = 2


def fail(message: str):
    raise InputError(message)


def items(name: str, text: str) -> list:
    """The comma-separated items of ``--name``: none empty, none twice."""
    values = [v.strip() for v in text.split(",")]
    if not text.strip() or "" in values:
        fail(f"--{name} has an empty item in {text!r}")
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        fail(f"--{name} lists {twice[0]!r} more than once in {text!r}")
    return values


def int_list(name: str, text: str) -> list:
    try:
        values = [int(v) for v in items(name, text)]
    except ValueError:
        fail(f"--{name} takes comma-separated whole numbers, got {text!r}")
    if any(v <= 0 for v in values):
        fail(f"--{name} values must be positive, got {text!r}")
    if len(set(values)) != len(values):
        fail(f"--{name} lists a number more than once in {text!r}")
    return values


def choice_list(name: str, text: str, choices) -> list:
    values = items(name, text)
    bad = [v for v in values if v not in choices]
    if bad:
        fail(f"--{name}: unknown value {bad[0]!r}; choose from {', '.join(choices)}")
    return values


def device_sets(text: str | None, batchsizes=(), ranks_elsewhere: bool = False) -> list:
    """``ranks_elsewhere``: multi-device sets run as MPI jobs on the hosts of
    a hostfile, so this host's GPU count does not bound them (each rank
    checks its own GPU); the spec is still checked."""
    from sinelstm.devices import DeviceSpecError, default_device_sets, parse_device_set

    specs = items("devices", text) if text is not None else default_device_sets()
    try:
        sets = [parse_device_set(s, check=False) for s in specs]
        sets = [ds if ranks_elsewhere and ds.n_devices > 1 else parse_device_set(ds.spec) for ds in sets]
    except DeviceSpecError as exc:
        fail(str(exc))
    names = [ds.spec for ds in sets]
    if len(set(names)) != len(names):
        fail(f"--devices lists a device set more than once in {text!r}")
    for ds in sets:
        for b in batchsizes:
            if b % ds.n_devices:
                fail(f"batch size {b} is not divisible by the {ds.n_devices} devices of {ds.spec!r}")
    return sets


def check_mpi(strategies, impls=()):
    if STRATEGIES[1] in strategies or TORCH_DDP in impls:
        from bench.launch import MpiMissing, find_mpiexec

        try:
            find_mpiexec()
        except MpiMissing as exc:
            fail(str(exc))


def mpi_args(ctx, param, value):
    """A click callback for ``--mpi-args``: checked, then handed to every MPI
    launch through the environment (:mod:`bench.launch`)."""
    import os

    from bench.launch import MPI_ARGS_ENV, check_hostfiles, parse_mpi_args

    if not value:
        os.environ.pop(MPI_ARGS_ENV, None)
        return []
    try:
        words = parse_mpi_args(value)
        check_hostfiles(words)
    except ValueError as exc:
        fail(f"--mpi-args {value!r}: {exc}")
    os.environ[MPI_ARGS_ENV] = value
    return words


# Where an implementation that does not train every device set can run.
RUNS_ON = {TORCH_GRAPH: "one GPU", TORCH_DDP: "a set of several devices, e.g. 0+1 or cpu+cpu",
           GRAPH_IMPL: "one device, or several with --strategy chainermn (one process per device)"}


def check_impls(impls, sets, strategies):
    """Refuse an implementation that no device set asked for can train."""
    from bench.grid import impls_without_runs

    if missing := impls_without_runs(impls, sets, strategies):
        fail(f"--impl {missing[0]} runs on {RUNS_ON.get(missing[0], 'one device')}, and none of the device sets "
             f"{', '.join(ds.spec for ds in sets)} is one")


def positive(name):
    """A click callback: a finite number above zero (``nan`` and ``inf``
    parse as floats, and would make every run an instant timeout)."""
    def check(ctx, param, value):
        if value is not None and not value > 0:
            fail(f"--{name} must be positive, got {value}")
        if value is not None and not math.isfinite(value):
            fail(f"--{name} must be a finite number, got {value}")
        return value

    return check


def check_grid_size(n_runs: int):
    if n_runs > MAX_RUNS:
        fail(f"the sweep would have {n_runs} runs; at most {MAX_RUNS} are allowed - fewer repeats or values")


def writable_folder(out: Path):
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".write-test").write_text("")
        (out / ".write-test").unlink()
    except OSError as exc:
        fail(f"cannot write to {out}: {exc.strerror or exc}")


def writable_output(output: Path):
    """Refuse an output path that cannot be written, before minutes of rendering."""
    if output.is_dir():
        fail(f"-o {output} is a folder; name the HTML file")
    if output.exists() and not output.is_file():  # a device or a pipe: the report would replace it
        fail(f"-o {output} is not a regular file; name an HTML file")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        probe = output.parent / f".{output.name}.probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        fail(f"cannot write the report to {output}: {exc.strerror or exc}")
