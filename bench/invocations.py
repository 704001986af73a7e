"""env.json: the machine of every sweep invocation on a results folder.

A folder may be filled by several invocations (a resumed sweep, a rerun on
another machine); each run row names the invocation that measured it, so
the report can describe the machine a number came from. env.json keeps every
invocation's record under ``invocations``, keyed by when and where it ran,
and is only ever appended to; its top-level fields stay the first record,
which is what a folder written before invocations were recorded holds.
"""
import json
from pathlib import Path

from bench.fsio import atomic_write

ENV = "env.json"


def invocation_id(record: dict) -> str:
    """'<recorded_at>@<host>': when and where, readable in runs.csv."""
    return f"{record.get('recorded_at', '?')}@{record.get('host', '?')}"


def read(folder, warn=lambda message: None) -> dict:
    """env.json, or {} (with a warning) when it is absent or damaged."""
    from bench.envinfo import load

    return load(folder, warn)


def append(folder, record: dict) -> str:
    """Add ``record`` as a new invocation of ``folder``; returns its id."""
    env = read(folder)
    invocations = env.get("invocations") or ({invocation_id(env): _machine(env)} if env else {})
    key = base = invocation_id(record)
    n = 1
    while key in invocations:  # two invocations within one second on one host
        n += 1
        key = f"{base}#{n}"
    invocations[key] = record
    first = {k: v for k, v in env.items() if k != "invocations"} or record
    atomic_write(Path(folder) / ENV, json.dumps({**first, "invocations": invocations}, indent=2))
    return key


def _machine(env: dict) -> dict:
    return {k: v for k, v in env.items() if k != "invocations"}


def records(env: dict, used=()) -> dict:
    """The invocations' records by id, restricted to ``used`` ids when any
    run names one; a folder from before invocations has its one record."""
    invocations = env.get("invocations") or ({invocation_id(env): _machine(env)} if env else {})
    used = {u for u in used if isinstance(u, str) and u}
    chosen = {k: v for k, v in invocations.items() if k in used}
    return chosen or invocations


def machine_kind(record: dict) -> str:
    """What makes two machines' timings comparable, in words: the CPU (model
    and usable cores) and the GPUs; not the host name, which a lent machine
    of the same kind does not keep."""
    cpu, gpu = record.get("cpu") or {}, record.get("gpu") or {}
    names = [d.get("name", "?") for d in gpu.get("devices") or []]
    gpus = f"{len(names)}× {names[0]}" if names and len(set(names)) == 1 else ", ".join(names) or "no GPU"
    return f"{cpu.get('usable_cores', '?')}-core {cpu.get('model', '?')}, {gpus}"


def other_machine(env: dict, record: dict) -> str | None:
    """The kind of machine a folder's runs (its env.json, ``env``) were
    measured on, when it is not ``record``'s: a sweep resumed there would
    pool two machines' runs as repeats of one configuration."""
    if not env:
        return None
    theirs, mine = machine_kind(_machine(env)), machine_kind(record)
    return theirs if theirs != mine else None


def other_gates(env: dict, host_gate) -> list:
    """The host-speed gate settings of a folder's earlier invocations that
    differ from ``host_gate`` (an invocation from before the gate: off)."""
    seen = {_gate_word((record.get("control") or {}).get("host_gate_tolerance")) for record in records(env).values()}
    return sorted(seen - {_gate_word(host_gate)})


def _gate_word(tolerance) -> str:
    return "off" if tolerance is None else f"{tolerance:g}"


def check_comparable(folder: Path, host_gate=None) -> dict:
    """This machine's record, once a folder measured on another kind of
    machine, or timed under another host-speed gate (``host_gate``, the
    tolerance or None), has been refused as bad input (its runs and this
    one's would be pooled as repeats of one configuration)."""
    from bench import envinfo
    from bench.options import fail

    record = envinfo.collect()
    env, problem = envinfo.read(folder) if folder.is_dir() else ({}, None)
    if problem:  # its runs' machine unknown: they might be pooled with this one's, and append would drop it
        fail(f"{folder / ENV} is damaged ({problem}): the machine its runs were measured on is unknown; restore "
             f"it, or sweep into a new folder with --out")
    if theirs := other_machine(env, record):
        fail(f"{folder} holds runs measured on another kind of machine ({theirs}; this one: "
             f"{machine_kind(record)}); sweep into a new folder with --out, so that the two are not pooled "
             f"as repeats")
    if env and (gates := other_gates(env, host_gate)):
        fail(f"{folder} holds runs timed with --host-gate {', '.join(gates)}; this sweep asks for "
             f"--host-gate {_gate_word(host_gate)}: give the same, or sweep into a new folder with --out")
    return record


def update(folder, key: str, fields: dict):
    """Add ``fields`` to invocation ``key``'s record (what a sweep learns at
    its end, e.g. the load after it); nothing else of env.json changes."""
    env = read(folder)
    invocations = env.get("invocations") or {}
    if key not in invocations:
        return
    invocations[key] = {**invocations[key], **fields}
    atomic_write(Path(folder) / ENV, json.dumps({**env, "invocations": invocations}, indent=2))
