"""The results folder: append-only CSVs that survive a crash of the sweep.

A run's side files (curve, closed loop, breakdown) are appended first and its
``runs.csv`` row last, each write flushed to disk: the row is the commit
mark. On opening, a torn last line is cut off and side rows whose run has no
row are dropped, so a sweep killed at any point and run again ends with the
same rows as one that was never interrupted.

Columns are the fields of the row types in :mod:`bench.schema`: a row with a
field too many or too few is refused, never silently dropped or padded.
"""
import csv
import os
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from bench.schema import LEGACY, RUNS, SIDE_FILES, RunRow, columns_of, numeric_columns


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


def _append(path: Path, columns: list, rows: list):
    _check(path.name, columns, rows)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="raise")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def _cut_torn_line(path: Path):
    """Drop a last line that a kill left without its newline."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    path.write_bytes(data[: data.rfind(b"\n") + 1])


def _read(path: Path, row_type) -> pd.DataFrame:
    """A table with the row type's columns, numbers as numbers; columns an
    older folder lacks read as their legacy value, or empty."""
    columns = columns_of(row_type)
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=columns)
    table = pd.read_csv(path, dtype={"run_id": str})
    for col in columns:
        if col not in table:
            table[col] = LEGACY.get(col)
    for col in numeric_columns(row_type):
        if col in table:
            table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def _add_new_columns(path: Path, columns: list):
    """A folder written before a column was added at the end of the schema:
    rewrite it with that column (its legacy value), so that appended rows
    line up with the header. Any other mismatch is left alone."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    if header == columns or header != columns[: len(header)]:
        return
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in columns[len(header):]:
        table[col] = LEGACY.get(col, "")
    tmp = path.with_suffix(".tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)


class ResultStore:
    def __init__(self, folder):
        self.folder = Path(folder)

    @property
    def runs_path(self) -> Path:
        return self.folder / RUNS

    def open_for_writing(self):
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ResultsError(f"cannot write to {self.folder}: {exc.strerror or exc}") from None
        self.repair()

    def repair(self):
        _cut_torn_line(self.runs_path)
        _add_new_columns(self.runs_path, RunRow.columns())
        done = self.completed_ids()
        for name in SIDE_FILES:
            path = self.folder / name
            _cut_torn_line(path)
            if not path.exists() or path.stat().st_size == 0:
                continue
            side = pd.read_csv(path, dtype={"run_id": str})
            keep = side[side["run_id"].isin(done)]
            if len(keep) != len(side):
                tmp = path.with_suffix(".tmp")
                keep.to_csv(tmp, index=False)
                os.replace(tmp, path)

    def completed_ids(self) -> set:
        if not self.runs_path.exists() or self.runs_path.stat().st_size == 0:
            return set()
        return set(pd.read_csv(self.runs_path, usecols=["run_id"], dtype=str)["run_id"])

    def append_run(self, row: RunRow, side: dict):
        """``side`` maps a side-file name to its rows (dicts of its columns)."""
        for name, rows in side.items():
            if name not in SIDE_FILES:
                raise SchemaError(f"unknown side file {name!r}")
            if rows:
                _append(self.folder / name, columns_of(SIDE_FILES[name]), rows)
        _append(self.runs_path, RunRow.columns(), [asdict(row)])

    def load(self) -> dict:
        """All tables as DataFrames (empty ones for absent files)."""
        if not self.runs_path.exists() or self.runs_path.stat().st_size == 0:
            raise ResultsError(f"no results in {self.folder} (no {RUNS})")
        tables = {"runs": _read(self.runs_path, RunRow)}
        for name, row_type in SIDE_FILES.items():
            tables[name.removesuffix(".csv")] = _read(self.folder / name, row_type)
        return tables
