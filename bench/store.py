"""The results folder: append-only CSVs that survive a crash of the sweep.

A run's side files (curve, closed loop, breakdown) are appended first and its
``runs.csv`` row last, each write synced to disk: the row is the commit mark.
Only a sweep writes, and one at a time (:mod:`bench.lock`). It takes the
folder (the lock, and a check that each file it writes is a regular file
and ``samples`` a folder), then, once the folder is known to be this kind
of machine's (:func:`bench.invocations.check_comparable`: a refused sweep
leaves it as it was), settles it: a torn last line (a kill mid-write) and lines
that do not parse are moved to ``<name>.quarantine.csv`` with a warning
naming the line, side rows whose run has no row are dropped (uncommitted),
and a file of an older schema is rewritten with today's columns; each such
rewrite is atomic (:mod:`bench.fsio`). So a sweep killed at any point and run
again ends with the same rows as one that was never interrupted.

Reading (the report) takes one snapshot of each file and never writes: a
torn last line is a row still being written and is not there yet; a line
that does not parse is warned about and left out, never counted.

A run may have several rows: a failed attempt stays as history, and the run
is tried again until one attempt is ok. ``load()`` gives the latest attempt
of each run (``runs``) and every row (``attempts``).

Columns are the fields of the row types in :mod:`bench.schema`: a row with a
field too many or too few is refused, never silently dropped or padded.
"""
import csv
import io
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from bench import samples as per_update, table
from bench.fsio import append_synced, atomic_write
from bench.lock import FolderBusy, FolderLock
from bench.schema import RUNS, SIDE_FILES, RunRow, clean_text, columns_of, numeric_columns
from sinelstm import hostspeed

MAX_WARNINGS = 5  # per file; then a count


class ResultsError(Exception):
    """A results folder that cannot be used."""


class SchemaError(ValueError):
    """A row whose fields are not the file's columns."""


def _check(name: str, columns: list, rows: list):
    for row in rows:
        if list(row) != columns:
            extra, missing = set(row) - set(columns), set(columns) - set(row)
            raise SchemaError(f"{name}: row fields differ from the columns "
                              f"(unknown {sorted(extra)}, missing {sorted(missing)})")


def _csv_lines(columns: list, rows: list, header: bool) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="raise")
    if header:
        writer.writeheader()
    writer.writerows({k: clean_text(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows)
    return buf.getvalue().encode()


def _frame(snap: table.Snapshot, row_type) -> pd.DataFrame:
    """Rows as a table: empty fields missing, numbers as numbers."""
    frame = pd.DataFrame(snap.rows, columns=snap.columns).replace("", np.nan)
    for col in numeric_columns(row_type):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def _regular(path: Path):
    """Raise :class:`ResultsError` unless ``path`` is absent or a regular
    file (a pipe would block its reader; a folder fails the writes)."""
    if path.exists() and not path.is_file():
        raise ResultsError(f"{path} is not a regular file; move it away")


def quarantine_name(name: str) -> str:
    return name.removesuffix(".csv") + ".quarantine.csv"


class ResultStore:
    def __init__(self, folder, warn=None):
        self.folder = Path(folder)
        self.warn = warn or (lambda message: None)
        self.lock = FolderLock(self.folder)

    @property
    def runs_path(self) -> Path:
        return self.folder / RUNS

    # -- the sweep's side ------------------------------------------------------
    def open_for_writing(self):
        """Take the folder (or raise :class:`ResultsError`) and settle it."""
        self.take()
        try:
            self.repair()
        except BaseException:
            self.close()
            raise

    def take(self):
        """Lock the folder for this sweep (or raise :class:`ResultsError`),
        having checked that what it holds beside the tables is what a sweep
        writes (the tables: when :meth:`repair` reads them); nothing in
        it changes yet but the lock file (:meth:`repair` settles it), so that
        a sweep refused after this (another machine's folder) leaves its
        files as they were."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / ".write-test"
            probe.write_text("")
            probe.unlink()
            self.lock.acquire()
        except FolderBusy as exc:
            raise ResultsError(str(exc)) from None
        except OSError as exc:
            raise ResultsError(f"cannot write to {self.folder}: {exc.strerror or exc}") from None
        try:
            self._check_layout()
        except BaseException:
            self.close()
            raise

    def _check_layout(self):
        """The folder's own entries are of the kind a sweep writes: a file
        where it appends or reads (a folder or a pipe there would fail the
        sweep after runs, or block it), a folder of samples. The tables
        themselves are checked where they are read (:meth:`_snapshot`)."""
        for name in (*map(quarantine_name, (RUNS, *SIDE_FILES)), "env.json"):
            _regular(self.folder / name)
        for path in self.folder.glob(f"{Path(hostspeed.REFERENCE_FILE).stem}*"):  # the host gate's references
            _regular(path)
        if (samples := self.folder / per_update.FOLDER).exists() and not samples.is_dir():
            raise ResultsError(f"{samples} is not a folder; move it away")

    def close(self):
        self.lock.release()

    def repair(self):
        runs = self._snapshot(RUNS, RunRow)
        self._settle(runs, None)
        recorded = {r["run_id"] for r in runs.rows}
        for name, row_type in SIDE_FILES.items():
            self._settle(self._snapshot(name, row_type), recorded)

    def _settle(self, snap: table.Snapshot, recorded: set | None):
        """Quarantine bad and torn lines, drop uncommitted side rows, migrate."""
        name = snap.path.name
        bad = snap.bad + ([(snap.n_lines + 1, snap.torn, "cut off (a write was interrupted)")]
                          if snap.torn else [])
        if bad:
            append_synced(self.folder / quarantine_name(name), b"".join(raw + b"\n" for _, raw, _ in bad))
            self._warn_lines(name, bad, f"moved to {quarantine_name(name)}")
        keep = snap.rows if recorded is None else [r for r in snap.rows if r["run_id"] in recorded]
        if snap.added and snap.header is not None:
            self.warn(f"{name}: written by an older version; added the columns {', '.join(snap.added)}")
        if bad or snap.added or len(keep) != len(snap.rows):
            snap.rows = keep
            atomic_write(snap.path, snap.to_csv())

    def completed_ids(self) -> set:
        """Runs with an ok attempt: the ones a sweep skips."""
        return {r["run_id"] for r in self._snapshot(RUNS, RunRow).rows if r["status"] == "ok"}

    def attempts(self) -> Counter:
        """Rows recorded so far per run_id."""
        return Counter(r["run_id"] for r in self._snapshot(RUNS, RunRow).rows)

    def append_run(self, row: RunRow, side: dict, samples=None):
        """``side`` maps a side-file name to its rows (dicts of its columns);
        ``samples``, the run's per-update ms, go to :mod:`bench.samples`
        before the row (the row stays the commit mark)."""
        for name in side:
            if name not in SIDE_FILES:
                raise SchemaError(f"unknown side file {name!r}")
        runs = asdict(row)
        _check(RUNS, RunRow.columns(), [runs])
        for name, rows in side.items():
            _check(name, columns_of(SIDE_FILES[name]), rows)
        for name, rows in side.items():
            if rows:
                self._append(name, columns_of(SIDE_FILES[name]), rows)
        if samples is not None and len(samples):
            per_update.write(self.folder, row.run_id, samples)
        self._append(RUNS, RunRow.columns(), [runs])

    def _append(self, name: str, columns: list, rows: list):
        path = self.folder / name
        new = not path.exists() or path.stat().st_size == 0
        append_synced(path, _csv_lines(columns, rows, header=new))

    # -- the report's side -----------------------------------------------------
    def load(self) -> dict:
        """All tables as DataFrames (empty ones for absent files), from one
        snapshot, without writing anything."""
        runs = self._snapshot(RUNS, RunRow)
        if runs.header is None:
            raise ResultsError(f"no results in {self.folder} (no {RUNS})")
        self._warn_lines(RUNS, runs.bad, "left out (the next sweep quarantines it)")
        attempts = _frame(runs, RunRow)
        tables = {"runs": attempts.drop_duplicates("run_id", keep="last").reset_index(drop=True),
                  "attempts": attempts}
        recorded = set(attempts["run_id"])
        for name, row_type in SIDE_FILES.items():
            snap = self._snapshot(name, row_type)
            self._warn_lines(name, snap.bad, "left out (the next sweep quarantines it)")
            snap.rows = [r for r in snap.rows if r["run_id"] in recorded]  # a run being committed now
            tables[name.removesuffix(".csv")] = _frame(snap, row_type)
        return tables

    # -- both ------------------------------------------------------------------
    def _snapshot(self, name: str, row_type) -> table.Snapshot:
        _regular(self.folder / name)
        try:
            return table.read(self.folder / name, row_type)
        except table.HeaderError as exc:
            raise ResultsError(str(exc)) from None

    def _warn_lines(self, name: str, bad: list, what: str):
        for number, _, why in bad[:MAX_WARNINGS]:
            self.warn(f"{name} line {number}: {why}; {what}")
        if len(bad) > MAX_WARNINGS:
            self.warn(f"{name}: {len(bad) - MAX_WARNINGS} more such lines; {what}")
